using VmmSharp.Interop;

namespace VmmSharp.Kvm;

/// <content>ioeventfd and irqfd: guest notifications and interrupts that bypass the vCPU's exit path.</content>
public sealed unsafe partial class KvmVm
{
    /// <summary>Whether this host's KVM offers <c>KVM_IOEVENTFD</c> and <c>KVM_IRQFD</c>.</summary>
    public bool HasEventFds => CheckExtension(KvmCapability.Ioeventfd) > 0 && CheckExtension(KvmCapability.Irqfd) > 0;

    /// <summary>
    /// Makes every guest write of <paramref name="length"/> bytes to MMIO address <paramref name="address"/> signal
    /// <paramref name="eventFd"/> instead of exiting to user space (<c>KVM_IOEVENTFD</c>, no data match). KVM keeps
    /// its own reference to the eventfd; the caller may dispose its handle afterwards.
    /// </summary>
    /// <exception cref="KvmException">KVM refused, e.g. the host lacks <see cref="KvmCapability.Ioeventfd"/> or the address is taken.</exception>
    public void AddIoEventFd(EventFd eventFd, ulong address, uint length)
        => IoEventFd(eventFd, address, length, 0);

    /// <summary>Undoes <see cref="AddIoEventFd"/> for the same eventfd, address and length.</summary>
    public void RemoveIoEventFd(EventFd eventFd, ulong address, uint length)
        => IoEventFd(eventFd, address, length, KvmIoEventFd.FlagDeassign);

    /// <summary>
    /// Makes each signal of <paramref name="eventFd"/> raise an edge on <paramref name="gsi"/> of the in-kernel irqchip
    /// (<c>KVM_IRQFD</c>), routed as the VM's GSI routing says.
    /// </summary>
    /// <exception cref="KvmException">KVM refused, e.g. there is no irqchip.</exception>
    public void AddIrqFd(EventFd eventFd, uint gsi) => IrqFd(eventFd, gsi, 0);

    /// <summary>Undoes <see cref="AddIrqFd"/>.</summary>
    public void RemoveIrqFd(EventFd eventFd, uint gsi) => IrqFd(eventFd, gsi, KvmIrqFd.FlagDeassign);

    private void IoEventFd(EventFd eventFd, ulong address, uint length, uint flags)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
        bool fdRef = false;
        try
        {
            // The eventfd stays open until KVM has taken its own reference (the VM's handle is held by the marshaller).
            eventFd.DangerousAddRef(ref fdRef);
            var request = new KvmIoEventFd { Address = address, Length = length, Fd = (int)eventFd.DangerousGetHandle(), Flags = flags };
            Check(Libc.Ioctl(_fd, KvmIoctl.IoEventFd, &request), KvmIoctl.IoEventFd, $"addr=0x{address:x} len={length} flags={flags}");
        }
        finally
        {
            if (fdRef)
            {
                eventFd.DangerousRelease();
            }
        }
    }

    private void IrqFd(EventFd eventFd, uint gsi, uint flags)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
        bool fdRef = false;
        try
        {
            eventFd.DangerousAddRef(ref fdRef);
            var request = new KvmIrqFd { Fd = (uint)eventFd.DangerousGetHandle(), Gsi = gsi, Flags = flags };
            Check(Libc.Ioctl(_fd, KvmIoctl.IrqFd, &request), KvmIoctl.IrqFd, $"gsi={gsi} flags={flags}");
        }
        finally
        {
            if (fdRef)
            {
                eventFd.DangerousRelease();
            }
        }
    }
}
