using System.Runtime.InteropServices;
using VmmSharp.Kvm;
using VmmSharp.State;

namespace VmmSharp.Vm;

/// <summary>
/// Everything KVM holds for one vCPU that a snapshot must carry: CPUID, MP state, registers, segment and control
/// registers, XSAVE, XCRs, debug registers, the local APIC, every MSR KVM saves, pending events and the TSC frequency.
/// Read from a paused vCPU with <see cref="Capture"/>, written back in KVM's order with <see cref="ApplyTo(KvmVcpu, bool)"/>.
/// </summary>
/// <remarks>
/// The KVM structures are stored as KVM lays them out (x86-64, little-endian), each with its length, so a reader
/// checks every size before it copies. Threading: not thread-safe; use it from the thread that holds the paused VM.
/// </remarks>
public sealed class VcpuSavedState : IStateful
{
    private const int MaxCpuidEntries = 1024;
    private const int MaxMsrs = 4096;
    private const int MaxXsave = 1 << 20;
    private const uint MsrTsc = 0x10;
    private const uint MsrTscDeadline = 0x6e0;
    private const uint MsrKvmSystemTime = 0x12;
    private const uint MpStateUninitialized = 1;
    private const uint MsrKvmSystemTimeNew = 0x4b564d01;

    private KvmRegs _regs;
    private KvmSregs _sregs;
    private KvmXcrs _xcrs;
    private KvmDebugRegs _debugRegs;
    private KvmLapicState _lapic;
    private KvmVcpuEvents _events;

    /// <summary>The CPUID leaves the guest was given.</summary>
    public KvmCpuidEntry[] Cpuid { get; private set; } = [];

    /// <summary>The MP state (<c>KVM_MP_STATE_*</c>).</summary>
    public uint MpState { get; private set; }

    /// <summary>The general-purpose registers.</summary>
    public KvmRegs Regs => _regs;

    /// <summary>The XSAVE area (4 KiB, or <c>KVM_CAP_XSAVE2</c>'s size).</summary>
    public byte[] Xsave { get; private set; } = [];

    /// <summary>The MSRs saved, in the order they are restored (TSC first, TSC_DEADLINE last).</summary>
    public uint[] MsrIndices { get; private set; } = [];

    /// <summary>The MSRs' values, matching <see cref="MsrIndices"/>.</summary>
    public ulong[] MsrValues { get; private set; } = [];

    /// <summary>The TSC frequency in kHz (0 where the host cannot say).</summary>
    public uint TscKhz { get; private set; }

    /// <inheritdoc/>
    public ushort StateVersion => 1;

    /// <summary>
    /// Reads the state of a vCPU that is not running (paused, or never started): MP state first, events last, as KVM
    /// advises. <paramref name="msrs"/> is the list <see cref="SavedMsrs"/> made for this VM.
    /// </summary>
    public void Capture(KvmVcpu vcpu, ReadOnlySpan<uint> msrs)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        KvmVm vm = vcpu.Vm;
        MpState = vcpu.GetMpState();
        Cpuid = vcpu.GetCpuid();
        vcpu.GetRegs(out _regs);
        vcpu.GetSregs(out _sregs);
        int xsaveSize = XsaveSize(vm);
        if (Xsave.Length != xsaveSize)
        {
            Xsave = new byte[xsaveSize];
        }
        vcpu.GetXsave(Xsave);
        if (vm.StableExtension(KvmCapability.Xcrs) > 0)
        {
            vcpu.GetXcrs(out _xcrs);
        }
        if (vm.StableExtension(KvmCapability.DebugRegs) > 0)
        {
            vcpu.GetDebugRegs(out _debugRegs);
        }
        if (vm.HasIrqchip)
        {
            vcpu.GetLapic(out _lapic);
        }
        if (MsrIndices.Length != msrs.Length || !MsrIndices.AsSpan().SequenceEqual(msrs))
        {
            MsrIndices = msrs.ToArray();
            MsrValues = new ulong[msrs.Length];
        }
        int n = vcpu.ReadMsrs(MsrIndices, MsrValues);
        if (n != MsrIndices.Length)
        {
            throw new KvmException($"KVM_GET_MSRS on vCPU {vcpu.Id} refused MSR 0x{MsrIndices[n]:x} ({n} of {MsrIndices.Length} read)");
        }
        TscKhz = vm.StableExtension(KvmCapability.GetTscKhz) > 0 ? vcpu.GetTscKhz() : 0;
        vcpu.GetEvents(out _events);
    }

    /// <summary>
    /// Writes the state into <paramref name="vcpu"/> in the order KVM needs: TSC frequency (where it differs and the host
    /// can set it), CPUID (unless <paramref name="setCpuid"/> is false: KVM refuses changing it once a vCPU ran), MP
    /// state, registers, segment registers, XSAVE, XCRs, debug registers, LAPIC, MSRs (TSC before TSC_DEADLINE), events;
    /// last it tells a kvmclock guest it was paused.
    /// </summary>
    /// <exception cref="KvmException">KVM refused a part; the message names it (an MSR by its index).</exception>
    public void ApplyTo(KvmVcpu vcpu, bool setCpuid = true) => ApplyTo(vcpu, setCpuid, again: false);

    /// <summary>
    /// Like <see cref="ApplyTo(KvmVcpu, bool)"/>; with <paramref name="again"/> (this very state was applied to this vCPU
    /// before: an in-process reset) the TSC frequency, which only that first time could change, is left alone.
    /// </summary>
    internal void ApplyTo(KvmVcpu vcpu, bool setCpuid, bool again)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        KvmVm vm = vcpu.Vm;
        if (!again && TscKhz != 0 && vm.StableExtension(KvmCapability.TscControl) > 0 && vcpu.GetTscKhz() != TscKhz)
        {
            vcpu.SetTscKhz(TscKhz);
        }
        if (setCpuid)
        {
            vcpu.SetCpuid(Cpuid);
        }
        // Registers and events go through kvm_run's sync area where KVM offers it: it sets them as the vCPU next enters
        // KVM_RUN, registers first and events last (the order below), so two ioctls fewer. Not for a vCPU waiting for
        // its SIPI, whose KVM_RUN does not look at the sync area until after the SIPI.
        bool onEntry = MpState != MpStateUninitialized && vcpu.CanSetOnEntry;
        vcpu.SetMpState(MpState);
        if (onEntry)
        {
            vcpu.SetRegsOnEntry(_regs);
        }
        else
        {
            vcpu.SetRegs(_regs);
        }
        vcpu.SetSregs(_sregs);
        int size = XsaveSize(vm);
        if (Xsave.Length != size)
        {
            // Made to this host's size once (zero-padded or cut), then reused by every reset.
            byte[] xsave = new byte[size];
            Xsave.AsSpan(0, Math.Min(size, Xsave.Length)).CopyTo(xsave);
            Xsave = xsave;
        }
        vcpu.SetXsave(Xsave);
        if (vm.StableExtension(KvmCapability.Xcrs) > 0 && _xcrs.Count > 0)
        {
            vcpu.SetXcrs(_xcrs);
        }
        if (vm.StableExtension(KvmCapability.DebugRegs) > 0)
        {
            vcpu.SetDebugRegs(_debugRegs);
        }
        if (vm.HasIrqchip)
        {
            vcpu.SetLapic(_lapic);
        }
        int n = vcpu.WriteMsrs(MsrIndices, MsrValues);
        if (n != MsrIndices.Length)
        {
            throw new KvmException($"KVM_SET_MSRS on vCPU {vcpu.Id} refused MSR 0x{MsrIndices[n]:x} = 0x{MsrValues[n]:x} ({n} of {MsrIndices.Length} written)");
        }
        KvmVcpuEvents events = _events;
        events.Flags |= 0x1 | 0x2; // KVM_VCPUEVENT_VALID_NMI_PENDING | _SIPI_VECTOR: GET does not set them, SET needs them
        if (onEntry)
        {
            vcpu.SetEventsOnEntry(events);
        }
        else
        {
            vcpu.SetEvents(events);
        }
        if (UsesKvmclock())
        {
            _ = vcpu.NotifyPaused(); // KVM refuses it (EINVAL) unless the guest enabled kvmclock: ask only then
        }
    }

    /// <summary>Whether the guest had enabled kvmclock (bit 0 of MSR_KVM_SYSTEM_TIME or _NEW), from the saved MSRs.</summary>
    private bool UsesKvmclock()
    {
        for (int i = 0; i < MsrIndices.Length; i++)
        {
            if (MsrIndices[i] is MsrKvmSystemTime or MsrKvmSystemTimeNew && (MsrValues[i] & 1) != 0)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// The MSRs a snapshot of this VM's vCPUs saves: KVM's index list and its feature MSRs, those <paramref name="vcpu"/>
    /// can read, ordered for restore (the TSC first, TSC_DEADLINE last, which KVM computes against the TSC).
    /// </summary>
    public static uint[] SavedMsrs(KvmVcpu vcpu)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        KvmSystem kvm = vcpu.Vm.System;
        var list = new List<uint>(kvm.GetMsrIndexList());
        foreach (uint m in kvm.GetMsrFeatureIndexList())
        {
            if (!list.Contains(m))
            {
                list.Add(m);
            }
        }
        // KVM stops at the first MSR it cannot read for this vCPU: drop that one and ask again.
        ulong[] values = new ulong[list.Count];
        while (list.Count > 0)
        {
            int n = vcpu.ReadMsrs(CollectionsMarshal.AsSpan(list), values);
            if (n == list.Count)
            {
                break;
            }
            list.RemoveAt(n);
        }
        bool tsc = list.Remove(MsrTsc), deadline = list.Remove(MsrTscDeadline);
        if (tsc)
        {
            list.Insert(0, MsrTsc);
        }
        if (deadline)
        {
            list.Add(MsrTscDeadline);
        }
        return [.. list];
    }

    private static int XsaveSize(KvmVm vm) => Math.Max(KvmXsave.Size, vm.StableExtension(KvmCapability.Xsave2));

    /// <inheritdoc/>
    public void SaveState(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteBytes(MemoryMarshal.AsBytes(Cpuid.AsSpan()));
        writer.WriteUInt32(MpState);
        writer.WriteStruct(_regs);
        writer.WriteStruct(_sregs);
        writer.WriteBytes(Xsave);
        writer.WriteStruct(_xcrs);
        writer.WriteStruct(_debugRegs);
        writer.WriteStruct(_lapic);
        writer.WriteInt32(MsrIndices.Length);
        for (int i = 0; i < MsrIndices.Length; i++)
        {
            writer.WriteUInt32(MsrIndices[i]);
            writer.WriteUInt64(MsrValues[i]);
        }
        writer.WriteStruct(_events);
        writer.WriteUInt32(TscKhz);
    }

    /// <inheritdoc/>
    public void RestoreState(ref StateReader reader, ushort version)
    {
        StateFormatException.ThrowIfUnknownVersion(reader.Component, version, StateVersion);
        ReadOnlySpan<byte> cpuid = reader.ReadBytes(MaxCpuidEntries * Marshal.SizeOf<KvmCpuidEntry>(), "CPUID");
        if (cpuid.Length % Marshal.SizeOf<KvmCpuidEntry>() != 0)
        {
            throw reader.Invalid("CPUID length", cpuid.Length, $"is not a multiple of {Marshal.SizeOf<KvmCpuidEntry>()}");
        }
        Cpuid = MemoryMarshal.Cast<byte, KvmCpuidEntry>(cpuid).ToArray();
        MpState = reader.ReadUInt32("MP state");
        if (MpState > 8)
        {
            throw reader.Invalid("MP state", MpState, "is not a KVM_MP_STATE value");
        }
        reader.ReadStruct(ref _regs, "regs");
        reader.ReadStruct(ref _sregs, "sregs");
        ReadOnlySpan<byte> xsave = reader.ReadBytes(MaxXsave, "XSAVE");
        if (xsave.Length < KvmXsave.Size)
        {
            throw reader.Invalid("XSAVE length", xsave.Length, $"is less than {KvmXsave.Size}");
        }
        Xsave = xsave.ToArray();
        reader.ReadStruct(ref _xcrs, "XCRs");
        if (_xcrs.Count > 16)
        {
            throw reader.Invalid("XCR count", _xcrs.Count, "is more than 16");
        }
        reader.ReadStruct(ref _debugRegs, "debug registers");
        reader.ReadStruct(ref _lapic, "LAPIC");
        int msrs = reader.ReadInt32("MSR count");
        if (msrs < 0 || msrs > MaxMsrs)
        {
            throw reader.Invalid("MSR count", msrs, $"is not 0 to {MaxMsrs}");
        }
        MsrIndices = new uint[msrs];
        MsrValues = new ulong[msrs];
        for (int i = 0; i < msrs; i++)
        {
            MsrIndices[i] = reader.ReadUInt32("MSR index");
            MsrValues[i] = reader.ReadUInt64("MSR value");
        }
        reader.ReadStruct(ref _events, "vCPU events");
        TscKhz = reader.ReadUInt32("TSC kHz");
    }
}
