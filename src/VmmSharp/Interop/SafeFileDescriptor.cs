using System.Runtime.InteropServices;

namespace VmmSharp.Interop;

/// <summary>
/// An owned Linux file descriptor (a KVM system, VM or vCPU fd), closed exactly once. It is passed to native
/// calls as the handle itself, never as a number: the marshaller holds a reference for the call's duration, so a
/// disposed descriptor fails with <see cref="ObjectDisposedException"/> instead of reaching whatever file later
/// got the same number, and a close while a call is in progress waits for the call to end.
/// </summary>
internal sealed class SafeFileDescriptor : SafeHandle
{
    /// <summary>For the marshaller.</summary>
    public SafeFileDescriptor()
        : base(-1, ownsHandle: true)
    {
    }

    public SafeFileDescriptor(int fd, bool ownsHandle = true)
        : base(-1, ownsHandle) => SetHandle(fd);

    /// <summary>Only -1 is invalid: 0 is a descriptor like any other.</summary>
    public override bool IsInvalid => handle == -1;

    protected override bool ReleaseHandle() => Libc.Close((int)handle) == 0;
}
