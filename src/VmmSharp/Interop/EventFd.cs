using System.Runtime.InteropServices;

namespace VmmSharp.Interop;

/// <summary>
/// A Linux eventfd: a counter the kernel or another thread signals and an event loop waits on. KVM signals one
/// for a guest's queue notification (ioeventfd) and injects an interrupt when one is signalled (irqfd).
/// </summary>
/// <remarks>Non-blocking: <see cref="Consume"/> never waits. Signalling and consuming are safe from any thread.</remarks>
public sealed unsafe class EventFd : SafeHandle
{
    /// <summary>Creates an eventfd with a zero counter.</summary>
    /// <exception cref="VmmException">The kernel refused (e.g. out of file descriptors).</exception>
    public EventFd()
        : base(-1, ownsHandle: true)
    {
        int fd = Libc.EventFdCreate(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new VmmException($"eventfd: {Libc.ErrorText(errno)}");
        }
        SetHandle(fd);
    }

    /// <summary>Adds one to the counter, waking a waiter. A counter at its maximum stays signalled.</summary>
    public void Signal()
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        ulong one = 1;
        // EAGAIN means the counter is already near its maximum: it is signalled, which is all a waiter needs.
        _ = Libc.Write(this, (byte*)&one, sizeof(ulong));
    }

    /// <summary>Reads and clears the counter; 0 when nothing was signalled since the last call.</summary>
    public ulong Consume()
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        ulong value = 0;
        return Libc.Read(this, (byte*)&value, sizeof(ulong)) == sizeof(ulong) ? value : 0;
    }

    /// <summary>Only -1 is invalid: 0 is a descriptor like any other.</summary>
    public override bool IsInvalid => handle == -1;

    /// <inheritdoc/>
    protected override bool ReleaseHandle() => Libc.Close((int)handle) == 0;
}
