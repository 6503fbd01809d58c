using Microsoft.Win32.SafeHandles;

namespace VmmSharp.Interop;

/// <summary>An owned Linux file descriptor (a KVM system, VM or vCPU fd), closed exactly once.</summary>
internal sealed class SafeFileDescriptor : SafeHandleZeroOrMinusOneIsInvalid
{
    public SafeFileDescriptor(int fd)
        : base(ownsHandle: true) => SetHandle(fd);

    /// <summary>The raw descriptor number for an ioctl; valid while this handle is alive.</summary>
    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => Libc.Close((int)handle) == 0;
}
