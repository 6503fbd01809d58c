using VmmSharp.Boot;
using VmmSharp.Snapshot;

namespace VmmSharp.Machine;

/// <summary>
/// A snapshot read and checked, ready to restore: its state file parsed (<see cref="SnapshotFile"/>), the machine it was
/// taken of (<see cref="Options"/>), and its memory file. Load it once and <see cref="PcMachine.Restore(MachineSnapshot)"/>
/// a paused machine of the same shape from it as often as needed (an in-process reset).
/// </summary>
/// <remarks>Threading: immutable; any thread.</remarks>
public sealed class MachineSnapshot
{
    private MachineSnapshot(SnapshotFile file, string statePath, string memoryPath, MachineOptions options, BootResult boot)
    {
        File = file;
        StatePath = statePath;
        MemoryPath = memoryPath;
        Options = options;
        Boot = boot;
    }

    /// <summary>The parsed state file.</summary>
    public SnapshotFile File { get; }

    /// <summary>The state file's path.</summary>
    public string StatePath { get; }

    /// <summary>The memory file's path.</summary>
    public string MemoryPath { get; }

    /// <summary>The options of the machine the snapshot was taken of (host-side ones such as the console are not saved).</summary>
    public MachineOptions Options { get; }

    /// <summary>What the kernel loader did when that machine booted.</summary>
    public BootResult Boot { get; }

    /// <summary>Reads and checks the state file and the memory file's size.</summary>
    /// <exception cref="SnapshotFormatException">The state file is missing, truncated, corrupt or of an unknown version; the memory file is missing or of the wrong size.</exception>
    public static MachineSnapshot Load(string statePath, string memoryPath)
    {
        ArgumentNullException.ThrowIfNull(statePath);
        ArgumentNullException.ThrowIfNull(memoryPath);
        SnapshotFile file = SnapshotFile.Read(statePath);
        SnapshotFile.Section machine = file.Get(PcMachine.MachineSection);
        MachineOptions options;
        BootResult boot;
        try
        {
            (options, boot) = SnapshotConfiguration.Read(machine.Data, machine.Version);
        }
        catch (State.StateFormatException e)
        {
            throw new SnapshotFormatException($"snapshot '{statePath}': {e.Message}", e);
        }
        var memory = new FileInfo(memoryPath);
        if (!memory.Exists)
        {
            throw new SnapshotFormatException($"memory file '{memoryPath}' does not exist");
        }
        if ((ulong)memory.Length != options.MemorySize)
        {
            throw new SnapshotFormatException($"memory file '{memoryPath}' is {memory.Length} bytes, but snapshot '{statePath}' is of a guest with {options.MemorySize} bytes of memory");
        }
        return new MachineSnapshot(file, statePath, memoryPath, options, boot);
    }
}
