using System.Runtime.InteropServices;
using VmmSharp.Interop;

namespace VmmSharp.Kvm;

/// <summary>A KVM virtual machine: memory slots, the in-kernel irqchip and PIT, interrupt lines and vCPUs.</summary>
/// <remarks>
/// Threading: <see cref="SetIrqLine"/> and <see cref="CheckExtension"/> may be called from any thread at any time
/// (KVM serializes them); set-up calls (slots, irqchip, PIT, routing, capabilities, MSR filter, vCPU creation) from
/// one thread at a time. After <see cref="Dispose"/> every member throws <see cref="ObjectDisposedException"/>;
/// a call in progress keeps the descriptor open until it returns.
/// </remarks>
public sealed unsafe partial class KvmVm : IDisposable
{
    private readonly SafeFileDescriptor _fd;
    private readonly List<(uint First, uint Count)> _trappedMsrs = [];
    private readonly Lock _msrLock = new();
    private readonly Dictionary<KvmCapability, int> _stableExtensions = [];
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

    /// <summary>Whether user-space MSR exits are on for this VM (see <see cref="EnableUserSpaceMsrExits"/>).</summary>
    public bool UserSpaceMsrExits => Volatile.Read(ref _userSpaceMsrEnabled);

    /// <summary>What <c>KVM_CHECK_EXTENSION</c> on this VM says of <paramref name="capability"/>.</summary>
    public int CheckExtension(KvmCapability capability)
    {
        ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
        int r = Libc.Ioctl(_fd, KvmIoctl.CheckExtension, (nuint)capability);
        return r < 0 ? 0 : r;
    }

    /// <summary>
    /// Like <see cref="CheckExtension"/>, for a capability whose answer does not change during the VM's life (a
    /// structure's size, whether an ioctl exists): asked of KVM once, then remembered, so that a snapshot restore
    /// repeated in place makes no ioctl for it.
    /// </summary>
    internal int StableExtension(KvmCapability capability)
    {
        lock (_stableExtensions)
        {
            if (!_stableExtensions.TryGetValue(capability, out int value))
            {
                value = CheckExtension(capability);
                _stableExtensions[capability] = value;
            }
            return value;
        }
    }

    /// <summary>Creates, changes or (with size 0) deletes a memory slot (<c>KVM_SET_USER_MEMORY_REGION</c>).</summary>
    /// <remarks>
    /// An unsafe precondition, as in rust-vmm's kvm-ioctls: the host range must stay mapped, and must not be given to
    /// anything else, for as long as the slot exists and any vCPU of this VM can run. KVM cannot check it. The
    /// <c>VirtualMachine</c> layer keeps it for you: it maps <c>GuestMemory</c> into slots and keeps that memory alive
    /// until no vCPU can touch it.
    /// </remarks>
    public void SetUserMemoryRegion(KvmMemorySlot slot)
    {
        ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
        if (slot.ReadOnly && CheckExtension(KvmCapability.ReadonlyMem) <= 0)
        {
            throw new VmmException($"memory slot {slot} is read-only, but this host's KVM has no KVM_CAP_READONLY_MEM");
        }
        var region = new KvmUserspaceMemoryRegion
        {
            Slot = slot.Slot,
            Flags = (slot.ReadOnly ? KvmUserspaceMemoryRegion.ReadOnly : 0) | (slot.LogDirtyPages ? KvmUserspaceMemoryRegion.LogDirtyPages : 0),
            GuestPhysAddr = slot.GuestAddress,
            MemorySize = slot.Size,
            UserspaceAddr = (ulong)slot.HostAddress,
        };
        Check(Libc.Ioctl(_fd, KvmIoctl.SetUserMemoryRegion, &region), KvmIoctl.SetUserMemoryRegion, slot.ToString());
    }

    /// <summary>Sets the three-page TSS region Intel hosts need below 4 GiB (<c>KVM_SET_TSS_ADDR</c>).</summary>
    public void SetTssAddress(ulong address)
        => Check(Libc.Ioctl(_fd, KvmIoctl.SetTssAddr, (nuint)address), KvmIoctl.SetTssAddr, $"addr=0x{address:x}");

    /// <summary>Sets the identity-map page Intel hosts need for real mode (<c>KVM_SET_IDENTITY_MAP_ADDR</c>).</summary>
    public void SetIdentityMapAddress(ulong address)
        => Check(Libc.Ioctl(_fd, KvmIoctl.SetIdentityMapAddr, &address), KvmIoctl.SetIdentityMapAddr, $"addr=0x{address:x}");

    /// <summary>Creates the in-kernel PIC, IOAPIC and LAPICs (<c>KVM_CREATE_IRQCHIP</c>); call before creating vCPUs.</summary>
    public void CreateIrqchip()
    {
        Check(Libc.Ioctl(_fd, KvmIoctl.CreateIrqchip, 0), KvmIoctl.CreateIrqchip, null);
        HasIrqchip = true;
    }

    /// <summary>Creates the in-kernel i8254 PIT (<c>KVM_CREATE_PIT2</c>); needs the irqchip.</summary>
    public void CreatePit()
    {
        var config = new KvmPitConfig { Flags = 0 };
        Check(Libc.Ioctl(_fd, KvmIoctl.CreatePit2, &config), KvmIoctl.CreatePit2, "flags=0");
    }

    /// <summary>Drives interrupt line <paramref name="irq"/> of the in-kernel irqchip (<c>KVM_IRQ_LINE</c>). Any thread.</summary>
    public void SetIrqLine(uint irq, bool level)
    {
        var line = new KvmIrqLevel { Irq = irq, Level = level ? 1u : 0u };
        Check(Libc.Ioctl(_fd, KvmIoctl.IrqLine, &line), KvmIoctl.IrqLine, $"irq={irq} level={line.Level}");
    }

    /// <summary>Replaces the whole GSI routing table of the in-kernel irqchip (<c>KVM_SET_GSI_ROUTING</c>).</summary>
    public void SetGsiRouting(ReadOnlySpan<KvmIrqRoute> routes)
    {
        int bytes = 8 + (routes.Length * sizeof(IrqRoutingEntry));
        byte* buffer = (byte*)NativeMemory.AllocZeroed((nuint)bytes);
        try
        {
            *(uint*)buffer = (uint)routes.Length;
            var entries = new Span<IrqRoutingEntry>(buffer + 8, routes.Length);
            for (int i = 0; i < routes.Length; i++)
            {
                entries[i].Gsi = routes[i].Gsi;
                entries[i].Type = IrqRoutingEntry.TypeIrqchip;
                entries[i].Irqchip = routes[i].Irqchip;
                entries[i].Pin = routes[i].Pin;
            }
            Check(Libc.Ioctl(_fd, KvmIoctl.SetGsiRouting, buffer), KvmIoctl.SetGsiRouting, $"{routes.Length} routes");
        }
        finally
        {
            NativeMemory.Free(buffer);
        }
    }

    /// <summary>The interrupt request register (IRR) of 8259 <paramref name="pic"/> (0 master, 1 slave), from <c>KVM_GET_IRQCHIP</c>.</summary>
    public byte GetPicRequests(uint pic)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(pic, KvmIrqRoute.PicSlave);
        IrqchipState state = default;
        state.ChipId = pic;
        Check(Libc.Ioctl(_fd, KvmIoctl.GetIrqchip, &state), KvmIoctl.GetIrqchip, $"chip_id={pic}");
        return state.Data[1]; // struct kvm_pic_state: last_irr, irr, imr, isr, ...
    }

    /// <summary>Enables a VM capability (<c>KVM_ENABLE_CAP</c>) with its first argument.</summary>
    public void EnableCapability(KvmCapability capability, ulong arg0 = 0)
    {
        var cap = new KvmEnableCap { Cap = (uint)capability };
        cap.Args[0] = arg0;
        Check(Libc.Ioctl(_fd, KvmIoctl.EnableCap, &cap), KvmIoctl.EnableCap, $"cap={capability} args[0]=0x{arg0:x}");
    }

    /// <summary>
    /// Makes MSR accesses that KVM does not handle itself (unknown or invalid MSRs, and those <see cref="TrapMsrs"/>
    /// names) exit to user space. This is VM-wide in KVM: it changes every vCPU of the VM, so a vCPU dispatcher
    /// without an MSR handler answers such exits as KVM would have (see <c>VcpuDispatcher</c>).
    /// Idempotent; returns false when the host cannot.
    /// </summary>
    public bool EnableUserSpaceMsrExits()
    {
        lock (_msrLock)
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
            Volatile.Write(ref _userSpaceMsrEnabled, true);
            return true;
        }
    }

    /// <summary>
    /// Adds the <paramref name="count"/> MSRs from <paramref name="first"/> to the VM-wide set whose guest accesses
    /// exit to user space even where KVM knows them (<c>KVM_X86_SET_MSR_FILTER</c>, deny-listing every range in the
    /// set). A range already in the set changes nothing; KVM takes at most 16 ranges.
    /// </summary>
    /// <exception cref="InvalidOperationException">The set already holds 16 ranges.</exception>
    public void TrapMsrs(uint first, uint count)
    {
        if (count is 0 or > 0x10000)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "an MSR filter range holds 1 to 65536 MSRs");
        }
        lock (_msrLock)
        {
            foreach ((uint f, uint c) in _trappedMsrs)
            {
                if (first >= f && (ulong)first + count <= (ulong)f + c)
                {
                    return;
                }
            }
            if (_trappedMsrs.Count == KvmMsrFilter.MaxRanges)
            {
                throw new InvalidOperationException(
                    $"cannot trap MSRs 0x{first:x}..0x{(ulong)first + count - 1:x}: KVM's MSR filter holds at most {KvmMsrFilter.MaxRanges} ranges, and {KvmMsrFilter.MaxRanges} are trapped already");
            }
            _trappedMsrs.Add((first, count));
            try
            {
                InstallMsrFilter();
            }
            catch
            {
                _trappedMsrs.RemoveAt(_trappedMsrs.Count - 1);
                throw;
            }
        }
    }

    private void InstallMsrFilter()
    {
        // One all-zero (deny, i.e. exit to user space) bitmap long enough for the largest range serves every range.
        uint longest = 0;
        foreach ((_, uint c) in _trappedMsrs)
        {
            longest = Math.Max(longest, c);
        }
        byte[] bitmap = new byte[(longest + 7) / 8];
        fixed (byte* bits = bitmap)
        {
            var filter = new KvmMsrFilter { Flags = KvmMsrFilter.DefaultAllow };
            for (int i = 0; i < _trappedMsrs.Count; i++)
            {
                filter.Ranges[i] = new KvmMsrFilterRange
                {
                    Flags = KvmMsrFilterRange.Read | KvmMsrFilterRange.Write,
                    Nmsrs = _trappedMsrs[i].Count,
                    Base = _trappedMsrs[i].First,
                    Bitmap = bits,
                };
            }
            Check(Libc.Ioctl(_fd, KvmIoctl.SetMsrFilter, &filter), KvmIoctl.SetMsrFilter,
                string.Join(", ", _trappedMsrs.Select(r => $"base=0x{r.First:x} nmsrs={r.Count}")));
        }
    }

    /// <summary>Creates vCPU <paramref name="id"/> (its APIC id) and maps its <c>kvm_run</c>.</summary>
    public KvmVcpu CreateVcpu(int id)
    {
        ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
        int fd = Libc.Ioctl(_fd, KvmIoctl.CreateVcpu, (nuint)id);
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

    /// <summary>
    /// Lets a helper process do the kernel's teardown of this VM after this process has exited, so that the exit does
    /// not wait for it (see <see cref="Vm.VirtualMachine.HandOffTeardown"/>). True once the helper holds the VM.
    /// </summary>
    internal bool HandOffTeardown() => TeardownHelper.HandOff(_fd);

    /// <summary>Closes the VM descriptor (once every call in progress on it has returned). Any thread.</summary>
    public void Dispose() => _fd.Dispose();

    private static void Check(int result, uint request, string? detail)
    {
        if (result < 0)
        {
            throw new KvmException(request, Marshal.GetLastPInvokeError(), detail);
        }
    }

    // struct kvm_irq_routing_entry with the irqchip member of its union.
    [StructLayout(LayoutKind.Sequential)]
    private struct IrqRoutingEntry
    {
        public const uint TypeIrqchip = 1; // KVM_IRQ_ROUTING_IRQCHIP

        public uint Gsi;
        public uint Type;
        public uint Flags;
        public uint Pad;
        public uint Irqchip;
        public uint Pin;
        private fixed uint _rest[6];
    }

    // struct kvm_irqchip: chip_id, pad, then a 512-byte union.
    [StructLayout(LayoutKind.Sequential)]
    private struct IrqchipState
    {
        public uint ChipId;
        public uint Pad;
        public fixed byte Data[512];
    }
}
