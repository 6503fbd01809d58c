using VmmSharp.Devices;
using VmmSharp.Interop;
using VmmSharp.Kvm;

namespace VmmSharp.Machine;

/// <summary>
/// An interrupt line through <c>KVM_IRQFD</c>: each rise signals an eventfd that KVM turns into an edge on the GSI,
/// from whatever thread raises it, without an ioctl. Falls are dropped (edge-triggered devices only).
/// </summary>
public sealed class IrqFdLine : IIrqLine, IDisposable
{
    private readonly EventFd _eventFd = new();

    /// <summary>Attaches a new eventfd to <paramref name="gsi"/> of <paramref name="vm"/>, which must have the irqchip.</summary>
    /// <exception cref="KvmException">KVM refused (no irqfd on this host, or no irqchip).</exception>
    public IrqFdLine(KvmVm vm, uint gsi)
    {
        ArgumentNullException.ThrowIfNull(vm);
        Gsi = gsi;
        try
        {
            vm.AddIrqFd(_eventFd, gsi);
        }
        catch
        {
            _eventFd.Dispose();
            throw;
        }
    }

    /// <summary>The GSI this line drives.</summary>
    public uint Gsi { get; }

    /// <summary>How many times the line was raised.</summary>
    public long Raised => Volatile.Read(ref _raised);

    private long _raised;

    /// <inheritdoc/>
    public void Set(bool level)
    {
        if (level)
        {
            _eventFd.Signal();
            Interlocked.Increment(ref _raised);
        }
    }

    /// <summary>Closes this side of the eventfd; KVM keeps the route until the VM is closed.</summary>
    public void Dispose() => _eventFd.Dispose();
}
