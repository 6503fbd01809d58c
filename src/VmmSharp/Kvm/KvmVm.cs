using System.Runtime.InteropServices;
using VmmSharp.Interop;
using VmmSharp.Memory;

namespace VmmSharp.Kvm;

/// <summary>A KVM virtual machine: memory slots, the in-kernel irqchip and PIT, interrupt lines and vCPUs.</summary>
public sealed unsafe partial class KvmVm : IDisposable
{
    private readonly SafeFileDescriptor _fd;
    private uint _nextSlot;
    private bool _userSpaceMsrEnabled;

    internal KvmVm(KvmSystem system, SafeFileDescriptor fd)
    {
        System = system;
        _fd = fd;
    }

    /// <summary>The KVM system this VM belongs to.</summary>
    public KvmSystem System { get; }

    /// <summary>Whether <see cref="CreateIrqchip"/> has been called.</summary>
    public bool HasIrqchip { get; private set; }

    internal int Fd => _fd.Fd;

    /// <summary>What <c>KVM_CHECK_EXTENSION</c> on this VM says of <paramref name="capability"/>.</summary>
    public int CheckExtension(KvmCapability capability)
    {
        int r = Libc.Ioctl(_fd.Fd, KvmIoctl.CheckExtension, (nuint)capability);
        return r < 0 ? 0 : r;
    }

    /// <summary>Registers every region of <paramref name="memory"/> as a memory slot, read-only regions as read-only slots.</summary>
    public void MapMemory(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        foreach (GuestRegion region in memory.Regions)
        {
            if (region.ReadOnly && CheckExtension(KvmCapability.ReadonlyMem) <= 0)
            {
                throw new VmmException($"guest memory region {region} is read-only, but this host's KVM has no KVM_CAP_READONLY_MEM");
            }
            var slot = new KvmUserspaceMemoryRegion
            {
                Slot = _nextSlot,
                Flags = region.ReadOnly ? KvmUserspaceMemoryRegion.ReadOnly : 0,
                GuestPhysAddr = region.GuestAddress,
                MemorySize = region.Size,
                UserspaceAddr = (ulong)region.HostAddress,
            };
            Check(Libc.Ioctl(_fd.Fd, KvmIoctl.SetUserMemoryRegion, &slot), KvmIoctl.SetUserMemoryRegion,
                $"slot={slot.Slot} guest_phys_addr=0x{slot.GuestPhysAddr:x} memory_size=0x{slot.MemorySize:x} flags={slot.Flags}");
            _nextSlot++;
        }
    }

    /// <summary>Sets the three-page TSS region Intel hosts need below 4 GiB (<c>KVM_SET_TSS_ADDR</c>).</summary>
    public void SetTssAddress(ulong address)
        => Check(Libc.Ioctl(_fd.Fd, KvmIoctl.SetTssAddr, (nuint)address), KvmIoctl.SetTssAddr, $"addr=0x{address:x}");

    /// <summary>Sets the identity-map page Intel hosts need for real mode (<c>KVM_SET_IDENTITY_MAP_ADDR</c>).</summary>
    public void SetIdentityMapAddress(ulong address)
        => Check(Libc.Ioctl(_fd.Fd, KvmIoctl.SetIdentityMapAddr, &address), KvmIoctl.SetIdentityMapAddr, $"addr=0x{address:x}");

    /// <summary>Creates the in-kernel PIC, IOAPIC and LAPICs (<c>KVM_CREATE_IRQCHIP</c>); call before creating vCPUs.</summary>
    public void CreateIrqchip()
    {
        Check(Libc.Ioctl(_fd.Fd, KvmIoctl.CreateIrqchip, 0), KvmIoctl.CreateIrqchip, null);
        HasIrqchip = true;
    }

    /// <summary>Creates the in-kernel i8254 PIT (<c>KVM_CREATE_PIT2</c>); needs the irqchip.</summary>
    public void CreatePit()
    {
        var config = new KvmPitConfig { Flags = 0 };
        Check(Libc.Ioctl(_fd.Fd, KvmIoctl.CreatePit2, &config), KvmIoctl.CreatePit2, "flags=0");
    }

    /// <summary>Drives interrupt line <paramref name="irq"/> of the in-kernel irqchip (<c>KVM_IRQ_LINE</c>).</summary>
    public void SetIrqLine(uint irq, bool level)
    {
        var line = new KvmIrqLevel { Irq = irq, Level = level ? 1u : 0u };
        Check(Libc.Ioctl(_fd.Fd, KvmIoctl.IrqLine, &line), KvmIoctl.IrqLine, $"irq={irq} level={line.Level}");
    }

    /// <summary>Enables a VM capability (<c>KVM_ENABLE_CAP</c>) with its first argument.</summary>
    public void EnableCapability(KvmCapability capability, ulong arg0 = 0)
    {
        var cap = new KvmEnableCap { Cap = (uint)capability };
        cap.Args[0] = arg0;
        Check(Libc.Ioctl(_fd.Fd, KvmIoctl.EnableCap, &cap), KvmIoctl.EnableCap, $"cap={capability} args[0]=0x{arg0:x}");
    }

    /// <summary>
    /// Makes MSR accesses that KVM does not handle itself (unknown or invalid MSRs) exit to user space,
    /// once per VM. Returns false when the host cannot.
    /// </summary>
    public bool EnableUserSpaceMsrExits()
    {
        if (_userSpaceMsrEnabled)
        {
            return true;
        }
        if (CheckExtension(KvmCapability.X86UserSpaceMsr) <= 0)
        {
            return false;
        }
        const ulong invalid = 1, unknown = 2, filter = 4;
        EnableCapability(KvmCapability.X86UserSpaceMsr, invalid | unknown | filter);
        _userSpaceMsrEnabled = true;
        return true;
    }

    /// <summary>
    /// Makes guest accesses to the <paramref name="count"/> MSRs from <paramref name="first"/> exit to user space
    /// even where KVM knows them (<c>KVM_X86_SET_MSR_FILTER</c>, deny-listing that range).
    /// </summary>
    public void TrapMsrs(uint first, uint count)
    {
        if (count is 0 or > 0x10000)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "an MSR filter range holds 1 to 65536 MSRs");
        }
        byte[] bitmap = new byte[(count + 7) / 8]; // all zero: deny, i.e. exit to user space
        fixed (byte* bits = bitmap)
        {
            var filter = new KvmMsrFilter { Flags = KvmMsrFilter.DefaultAllow };
            filter.Range0 = new KvmMsrFilterRange
            {
                Flags = KvmMsrFilterRange.Read | KvmMsrFilterRange.Write,
                Nmsrs = count,
                Base = first,
                Bitmap = bits,
            };
            Check(Libc.Ioctl(_fd.Fd, KvmIoctl.SetMsrFilter, &filter), KvmIoctl.SetMsrFilter, $"base=0x{first:x} nmsrs={count}");
        }
    }

    /// <summary>Creates vCPU <paramref name="id"/> (its APIC id) and maps its <c>kvm_run</c>.</summary>
    public KvmVcpu CreateVcpu(int id)
    {
        int fd = Libc.Ioctl(_fd.Fd, KvmIoctl.CreateVcpu, (nuint)id);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            int max = System.CheckExtension(KvmCapability.MaxVcpus);
            throw new KvmException(KvmIoctl.CreateVcpu, errno, $"vcpu id={id} (this host allows {max} vCPUs)");
        }
        var handle = new SafeFileDescriptor(fd);
        try
        {
            return new KvmVcpu(this, id, handle, SafeMapping.Shared(handle, (nuint)System.VcpuMmapSize, $"kvm_run of vCPU {id}"));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _fd.Dispose();

    private static void Check(int result, uint request, string? detail)
    {
        if (result < 0)
        {
            throw new KvmException(request, Marshal.GetLastPInvokeError(), detail);
        }
    }
}
