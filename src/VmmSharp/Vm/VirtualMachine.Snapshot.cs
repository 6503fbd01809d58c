using VmmSharp.Kvm;
using VmmSharp.Memory;
using VmmSharp.State;

namespace VmmSharp.Vm;

/// <content>The VM's KVM state for snapshots: VM-wide state and every vCPU's, saved and restored; the dirty log.</content>
public sealed partial class VirtualMachine
{
    private VmSavedState? _vmState;
    private VcpuSavedState[] _vcpuStates = [];
    private uint[]? _savedMsrs;

    /// <summary>Whether KVM logs the pages the guest writes (see <see cref="GetDirtyPages"/>).</summary>
    public bool TracksDirtyPages { get; private init; }

    /// <summary>
    /// Reads the VM's and every vCPU's KVM state (see <see cref="VmSavedState"/>, <see cref="VcpuSavedState"/>) and writes it
    /// to <paramref name="writer"/>: the VM's section, the vCPU count, one section per vCPU. The VM must be paused, or
    /// configured with its vCPUs never started.
    /// </summary>
    /// <exception cref="InvalidOperationException">The VM is running or stopped.</exception>
    public void SaveKvmState(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        EnsureStill("snapshot");
        _vmState ??= new VmSavedState();
        _vmState.Capture(Handle);
        _savedMsrs ??= _vcpus.Count > 0 ? VcpuSavedState.SavedMsrs(_vcpus[0].Vcpu) : [];
        EnsureVcpuStates();
        writer.WriteSection(_vmState);
        writer.WriteInt32(_vcpus.Count);
        for (int i = 0; i < _vcpus.Count; i++)
        {
            _vcpuStates[i].Capture(_vcpus[i].Vcpu, _savedMsrs);
            writer.WriteSection(_vcpuStates[i]);
        }
    }

    /// <summary>
    /// Reads what <see cref="SaveKvmState"/> wrote into this VM's vCPUs and VM, in KVM's order: every vCPU (CPUID first,
    /// unless <paramref name="setCpuid"/> is false for a VM whose vCPUs ran already), then PIT, clock, PICs, IOAPIC.
    /// The VM must be paused, or configured with its vCPUs never started, and have as many vCPUs as the state.
    /// </summary>
    /// <exception cref="StateFormatException">The state is malformed or is for a different number of vCPUs.</exception>
    /// <exception cref="KvmException">KVM refused a part of the state.</exception>
    public void RestoreKvmState(ref StateReader reader, bool setCpuid = true)
    {
        EnsureStill("restore");
        _vmState ??= new VmSavedState();
        reader.ReadSection(_vmState, "vm");
        int count = reader.ReadInt32("vCPU count");
        if (count != _vcpus.Count)
        {
            throw reader.Invalid("vCPU count", count, $"is not this VM's {_vcpus.Count}");
        }
        EnsureVcpuStates();
        for (int i = 0; i < count; i++)
        {
            reader.ReadSection(_vcpuStates[i], $"vcpu{i}");
        }
        Apply(setCpuid, again: false);
    }

    /// <summary>
    /// Writes the state last saved or read back into KVM again (what an in-process reset does, without parsing anything).
    /// </summary>
    public void ApplyKvmState(bool setCpuid)
    {
        EnsureStill("restore");
        if (_vmState is null || _vcpuStates.Length != _vcpus.Count)
        {
            throw new InvalidOperationException("no KVM state has been saved or read for this VM");
        }
        Apply(setCpuid, again: true);
    }

    private void Apply(bool setCpuid, bool again)
    {
        for (int i = 0; i < _vcpus.Count; i++)
        {
            _vcpuStates[i].ApplyTo(_vcpus[i].Vcpu, setCpuid, again);
        }
        _vmState!.ApplyTo(Handle);
    }

    /// <summary>The saved state of vCPU <paramref name="index"/> (after <see cref="SaveKvmState"/> or <see cref="RestoreKvmState"/>).</summary>
    public VcpuSavedState SavedVcpuState(int index) => _vcpuStates[index];

    /// <summary>
    /// Fetches and clears the dirty log of every memory region (<c>KVM_GET_DIRTY_LOG</c>): one bitmap per region of
    /// <see cref="Memory"/>, in order, bit i set if the guest wrote page i of the region since the last call, or the host
    /// did through <see cref="GuestMemory"/> (device models' used rings and DMA, which KVM's log does not see).
    /// </summary>
    /// <exception cref="InvalidOperationException">The VM was created without dirty-page tracking.</exception>
    public ulong[][] GetDirtyPages()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!TracksDirtyPages)
        {
            throw new InvalidOperationException("the VM was created without dirty-page tracking: create it with trackDirtyPages for diff snapshots");
        }
        var maps = new ulong[Memory.Regions.Count][];
        for (int i = 0; i < maps.Length; i++)
        {
            GuestRegion r = Memory.Regions[i];
            maps[i] = new ulong[((r.Size / GuestMemory.PageSize) + 63) / 64];
            if (!r.ReadOnly)
            {
                Handle.GetDirtyLog((uint)i, maps[i]);
                r.TakeHostWrites(maps[i]);
            }
        }
        return maps;
    }

    private void EnsureStill(string operation)
    {
        lock (_stateLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_state != VmState.Paused && !(_state == VmState.Configured && !_started))
            {
                throw new InvalidOperationException($"cannot {operation} the VM: it is {_state.ToString().ToLowerInvariant()}; pause it first");
            }
        }
    }

    private void EnsureVcpuStates()
    {
        if (_vcpuStates.Length != _vcpus.Count)
        {
            _vcpuStates = [.. _vcpus.Select(_ => new VcpuSavedState())];
        }
    }
}
