using System.Diagnostics;
using System.Reflection;
using VmmSharp.Arch.X86;
using VmmSharp.Boot;
using VmmSharp.Kvm;
using VmmSharp.Snapshot;
using VmmSharp.State;
using VmmSharp.Vm;

namespace VmmSharp.Machine;

/// <content>
/// Snapshots: <see cref="CreateSnapshot"/> of a paused machine (state file and memory file, full or diff),
/// <see cref="Restore(string, string, Func{MachineOptions, MachineOptions}?)"/> into a new machine, and
/// <see cref="Restore(MachineSnapshot)"/> of a paused machine in place (the in-process reset). docs/SNAPSHOT.md has the layout.
/// </content>
public sealed partial class PcMachine
{
    internal const string MachineSection = "machine";
    private const string KvmSection = "kvm";
    private const string DevicesSection = "devices";
    private const ushort KvmSectionVersion = 1;
    private const ushort DevicesSectionVersion = 1;

    private MachineSnapshot? _applied;

    /// <summary>The VmmSharp version written into snapshots.</summary>
    public static string LibraryVersion { get; } =
        typeof(PcMachine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0";

    /// <summary>
    /// Snapshots the paused machine: its state to <paramref name="statePath"/> and its memory to <paramref name="memoryPath"/>
    /// (a sparse file: zero pages are holes). A <see cref="SnapshotKind.Diff"/> memory file holds only the pages the guest
    /// wrote since the previous snapshot (needs <see cref="MachineOptions.TrackDirtyPages"/>); fold it into the previous
    /// full memory file with <see cref="MemoryFile.ApplyDiff"/> before restoring. Files are replaced.
    /// </summary>
    /// <exception cref="InvalidOperationException">The machine is not paused, or a diff is asked of a machine that does not track dirty pages.</exception>
    public SnapshotResult CreateSnapshot(string statePath, string memoryPath, SnapshotKind kind = SnapshotKind.Full)
    {
        ArgumentNullException.ThrowIfNull(statePath);
        ArgumentNullException.ThrowIfNull(memoryPath);
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_lifecycleLock)
        {
            _vm.EnsurePaused("snapshot");
            if (kind == SnapshotKind.Diff && !_vm.TracksDirtyPages)
            {
                throw new InvalidOperationException("a diff snapshot needs a machine built with TrackDirtyPages");
            }
            var clock = Stopwatch.StartNew();
            SnapshotFile file = BuildStateFile();
            long memoryBytes;
            if (kind == SnapshotKind.Diff)
            {
                memoryBytes = MemoryFile.WriteDiff(_vm.Memory, _vm.GetDirtyPages(), memoryPath);
            }
            else
            {
                if (_vm.TracksDirtyPages)
                {
                    _ = _vm.GetDirtyPages(); // the next diff is against this snapshot
                }
                memoryBytes = MemoryFile.WriteFull(_vm.Memory, memoryPath);
            }
            byte[] state = file.ToBytes();
            string temporary = statePath + ".tmp";
            System.IO.File.WriteAllBytes(temporary, state);
            System.IO.File.Move(temporary, statePath, overwrite: true);
            return new SnapshotResult(state.Length, memoryBytes, clock.Elapsed);
        }
    }

    /// <summary>
    /// Builds a new machine from a snapshot, in this process: its memory mapped private from <paramref name="memoryPath"/>
    /// (pages load lazily; the file is never written), the KVM state set in KVM's order, then the devices. The machine is
    /// <see cref="VmState.Paused"/>: <see cref="Run"/> (or <see cref="Resume"/>) continues the guest.
    /// <paramref name="adjust"/> may set the host side the snapshot does not carry (<see cref="MachineOptions.Console"/>,
    /// the logger, the deadline); the machine's shape (memory, vCPUs, devices) must stay as saved.
    /// </summary>
    /// <exception cref="SnapshotFormatException">The snapshot is truncated, corrupt, of an unknown version, has a memory file of the wrong size, or gives the guest CPUID features this host lacks.</exception>
    /// <exception cref="MachineConfigurationException"><paramref name="adjust"/> changed the machine's shape.</exception>
    /// <remarks>On any error everything built so far is disposed: nothing half-restored is left.</remarks>
    public static PcMachine Restore(string statePath, string memoryPath, Func<MachineOptions, MachineOptions>? adjust = null)
    {
        MachineSnapshot snapshot = MachineSnapshot.Load(statePath, memoryPath);
        MachineOptions options = adjust?.Invoke(snapshot.Options) ?? snapshot.Options;
        CheckShape(options, snapshot);
        var machine = new PcMachine(options, new RestoreSource(snapshot.MemoryPath, snapshot.Boot));
        try
        {
            machine.Apply(snapshot, freshVm: true);
            machine._vm.MarkRestored();
            return machine;
        }
        catch
        {
            machine.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Resets this paused machine to <paramref name="snapshot"/> without a new VM: the memory is mapped from the snapshot's
    /// memory file over the guest's (or, if it is mapped from that file already, the pages written since are discarded),
    /// and the KVM and device state are set again. The machine stays paused; <see cref="Resume"/> continues from the snapshot.
    /// </summary>
    /// <exception cref="InvalidOperationException">The machine is not paused (or configured and never run).</exception>
    /// <exception cref="MachineConfigurationException">The snapshot is of a machine of a different shape.</exception>
    public void Restore(MachineSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_lifecycleLock)
        {
            VmState state = _vm.State;
            if (state != VmState.Paused && !(state == VmState.Configured && Volatile.Read(ref _runs) == 0))
            {
                throw new InvalidOperationException($"cannot restore the machine: it is {state.ToString().ToLowerInvariant()}; pause it first");
            }
            CheckShape(_options, snapshot);
            _vm.Memory.MapFile(snapshot.MemoryPath);
            Apply(snapshot, freshVm: false);
            if (state == VmState.Configured)
            {
                _vm.MarkRestored();
            }
        }
    }

    private SnapshotFile BuildStateFile()
    {
        var file = new SnapshotFile(LibraryVersion);
        file.Add(MachineSection, SnapshotConfiguration.Version, SnapshotConfiguration.Write(_options, Boot));
        var kvm = new StateWriter(64 << 10);
        _vm.SaveKvmState(kvm);
        file.Add(KvmSection, KvmSectionVersion, kvm.WrittenSpan.ToArray());
        var devices = new StateWriter(4096);
        SaveDevices(devices);
        file.Add(DevicesSection, DevicesSectionVersion, devices.WrittenSpan.ToArray());
        return file;
    }

    private void Apply(MachineSnapshot snapshot, bool freshVm)
    {
        SnapshotFile file = snapshot.File;
        try
        {
            if (ReferenceEquals(_applied, snapshot))
            {
                _vm.ApplyKvmState(setCpuid: false); // the same snapshot again: no parsing
            }
            else
            {
                SnapshotFile.Section kvm = file.Get(KvmSection);
                StateFormatException.ThrowIfUnknownVersion(KvmSection, kvm.Version, KvmSectionVersion);
                var reader = new StateReader(kvm.Data, KvmSection);
                if (freshVm)
                {
                    CheckHostCpuid(snapshot, kvm.Data);
                }
                _vm.RestoreKvmState(ref reader, setCpuid: freshVm);
                reader.EnsureEnd();
            }
            SnapshotFile.Section devices = file.Get(DevicesSection);
            StateFormatException.ThrowIfUnknownVersion(DevicesSection, devices.Version, DevicesSectionVersion);
            var deviceReader = new StateReader(devices.Data, DevicesSection);
            RestoreDevices(ref deviceReader);
            deviceReader.EnsureEnd();
            _applied = snapshot;
        }
        catch (StateFormatException e)
        {
            _applied = null;
            throw new SnapshotFormatException($"snapshot '{snapshot.StatePath}': {e.Message}", e);
        }
        catch (KvmException e)
        {
            _applied = null;
            throw new SnapshotFormatException($"snapshot '{snapshot.StatePath}' cannot be restored on this host: {e.Message}", e);
        }
    }

    /// <summary>Refuses a snapshot whose guest was given CPUID features this host's KVM cannot offer.</summary>
    private void CheckHostCpuid(MachineSnapshot snapshot, ReadOnlySpan<byte> kvmSection)
    {
        var scratch = new StateReader(kvmSection, KvmSection);
        var probe = new VmSavedState();
        scratch.ReadSection(probe, "vm");
        int count = scratch.ReadInt32("vCPU count");
        if (count <= 0)
        {
            return; // RestoreKvmState names the bad count
        }
        var vcpu = new VcpuSavedState();
        scratch.ReadSection(vcpu, "vcpu0");
        // What this host gives a guest: KVM's supported leaves, and what a fresh vCPU reads back (PVM ORs the host's in).
        string? missing = CpuidCompatibility.Missing(vcpu.Cpuid, [.. _vm.Kvm.GetSupportedCpuid(), .. _vm.Vcpus[0].Vcpu.GetCpuid()]);
        if (missing is not null)
        {
            throw new SnapshotFormatException($"snapshot '{snapshot.StatePath}' gave its guest CPUID features this host lacks: {missing}");
        }
    }

    private static void CheckShape(MachineOptions options, MachineSnapshot snapshot)
    {
        MachineOptions saved = snapshot.Options;
        if (options.MemorySize != saved.MemorySize || options.CpuCount != saved.CpuCount || options.Disks.Count != saved.Disks.Count
            || options.Networks.Count != saved.Networks.Count || options.Rng != saved.Rng || options.ConsoleDevice != saved.ConsoleDevice
            || (options.Vsock is null) != (saved.Vsock is null))
        {
            throw new MachineConfigurationException(nameof(MachineOptions),
                $"snapshot '{snapshot.StatePath}' is of a machine with {saved.MemorySize >> 20} MiB, {saved.CpuCount} vCPU(s), {saved.Disks.Count} disk(s), " +
                $"{saved.Networks.Count} network card(s), {(saved.Vsock is null ? "no" : "a")} vsock; this one has {options.MemorySize >> 20} MiB, " +
                $"{options.CpuCount} vCPU(s), {options.Disks.Count} disk(s), {options.Networks.Count} network card(s), {(options.Vsock is null ? "no" : "a")} vsock");
        }
    }

    private sealed record RestoreSource(string MemoryPath, BootResult Boot);
}

/// <summary>What <see cref="PcMachine.CreateSnapshot"/> writes of the memory.</summary>
public enum SnapshotKind
{
    /// <summary>All of the memory (zero pages as holes).</summary>
    Full,

    /// <summary>Only the pages the guest wrote since the previous snapshot.</summary>
    Diff,
}

/// <summary>What a snapshot took.</summary>
/// <param name="StateBytes">The state file's size.</param>
/// <param name="MemoryBytesWritten">The bytes of memory written (holes not counted).</param>
/// <param name="Elapsed">How long it took.</param>
public readonly record struct SnapshotResult(long StateBytes, long MemoryBytesWritten, TimeSpan Elapsed);
