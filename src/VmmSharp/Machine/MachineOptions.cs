using Microsoft.Extensions.Logging;
using VmmSharp.Arch.X86;
using VmmSharp.Devices.Consoles;

namespace VmmSharp.Machine;

/// <summary>
/// What <see cref="PcMachine"/> builds and boots, in the terms of QEMU's <c>-kernel</c>, <c>-initrd</c>,
/// <c>-append</c>, <c>-m</c> and <c>-smp</c>. Only <see cref="KernelPath"/> is required.
/// </summary>
/// <example>
/// <code>
/// using var output = ConsoleOutput.StandardOutput();
/// using var machine = new PcMachine(new MachineOptions("bzImage")
/// {
///     InitrdPath = "initramfs.cpio.gz",
///     CommandLine = "console=ttyS0 panic=-1",
///     MemorySize = 512UL &lt;&lt; 20,
///     CpuCount = 2,
///     Console = new HostConsole(output),
/// });
/// MachineResult result = machine.Run();
/// output.Flush(TimeSpan.FromSeconds(1)); // the guest's last words, unless the console is stalled
/// return result.ExitStatus;
/// </code>
/// </example>
/// <param name="KernelPath">
/// The kernel image: a PVH ELF (an ELF with the Xen <c>PHYS32_ENTRY</c> note, e.g. Linux's <c>vmlinux</c>),
/// a Multiboot v1 kernel, or a Linux bzImage. A Multiboot kernel sees this path, as given, as the first word of its command line.
/// </param>
public sealed record MachineOptions(string KernelPath)
{
    /// <summary>The default RAM size: 128 MiB.</summary>
    public const ulong DefaultMemorySize = 128UL << 20;

    /// <summary>The default bound on reboots with <see cref="ResetAction.Reboot"/>: 100.</summary>
    public const int DefaultMaxReboots = 100;

    /// <summary>
    /// The initrd (initramfs) file; null for none. A Multiboot kernel gets it as module 0 with this path as the
    /// module's command line; a PVH kernel as module 0; Linux through the zero page.
    /// </summary>
    public string? InitrdPath { get; init; }

    /// <summary>The kernel command line (QEMU's <c>-append</c>), without the kernel path.</summary>
    public string CommandLine { get; init; } = "";

    /// <summary>
    /// Guest RAM in bytes: at least <see cref="Layout.MinMemorySize"/>, a multiple of 4 KiB. What does not fit below
    /// the 32-bit MMIO hole at 3 GiB is placed above 4 GiB.
    /// </summary>
    public ulong MemorySize { get; init; } = DefaultMemorySize;

    /// <summary>
    /// The number of vCPUs: 1 to the smaller of the host's <c>KVM_CAP_MAX_VCPUS</c> and <see cref="MpTable.MaxCpus"/>.
    /// vCPU 0 boots the kernel; the others wait for INIT/SIPI from it (through the in-kernel LAPIC), as on a PC.
    /// </summary>
    public int CpuCount { get; init; } = 1;

    /// <summary>
    /// CPUID bits hidden from every vCPU (e.g. parsed with <see cref="CpuidMask.Parse"/>), in addition to what
    /// <see cref="CpuidPolicy"/> hides.
    /// </summary>
    public IReadOnlyList<CpuidMask> CpuidMasks { get; init; } = [];

    /// <summary>
    /// What the machine hides from the guest's CPUID before <see cref="CpuidMasks"/>: by default what the host needs
    /// (on PVM, the features a kernel would pick and the host cannot run: <see cref="CpuidPolicies.Pvm"/>);
    /// <see cref="Arch.X86.CpuidPolicy.None"/> shows KVM's supported CPUID with only the explicit masks.
    /// </summary>
    public CpuidPolicy CpuidPolicy { get; init; } = CpuidPolicy.Auto;

    /// <summary>
    /// COM1's host side: where the guest's output goes and what feeds its input. Null for none: output is discarded
    /// and no input arrives. The machine does not dispose it, so one console can serve every boot.
    /// </summary>
    public HostConsole? Console { get; init; }

    /// <summary>What a guest reset (i8042 pulse, or KVM's reset system event) does.</summary>
    public ResetAction OnReset { get; init; } = ResetAction.Exit;

    /// <summary>The exit status of a run the guest ended by resetting, when <see cref="OnReset"/> is <see cref="ResetAction.Exit"/>.</summary>
    public int ResetExitStatus { get; init; }

    /// <summary>
    /// With <see cref="ResetAction.Reboot"/>: how many times the guest may reboot; a reset after that many reboots ends
    /// the run as <see cref="MachineOutcome.RebootLimitReached"/>, so a guest that resets in a loop cannot run forever.
    /// At least 0; <see cref="DefaultMaxReboots"/> by default.
    /// </summary>
    public int MaxReboots { get; init; } = DefaultMaxReboots;

    /// <summary>Receives the machine's diagnostics (unhandled ports and MMIO at Debug, the run's end at Information); null for none.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>The longest <see cref="Deadline"/>: about 24.8 days (<see cref="int.MaxValue"/> milliseconds, what a timed wait takes).</summary>
    public static readonly TimeSpan MaxDeadline = TimeSpan.FromMilliseconds(int.MaxValue);

    /// <summary>How long <see cref="PcMachine.Run"/> lets the guest run: more than 0, at most <see cref="MaxDeadline"/>; null for no limit.</summary>
    public TimeSpan? Deadline { get; init; }

    /// <summary>
    /// Whether instructions KVM's emulator cannot run are finished by the VMM (<see cref="Emulation.EmulationFallback"/>)
    /// instead of ending the run with an error. On by default.
    /// </summary>
    public bool EmulationFallback { get; init; } = true;

    /// <summary>
    /// When the last boot ends, <see cref="MachineRunner"/> hands the VM's kernel teardown to a helper process
    /// (<see cref="Vm.VirtualMachine.HandOffTeardown"/>), so that a command exiting right after does not wait for it.
    /// False by default: only for a process that is about to exit.
    /// </summary>
    public bool HandOffTeardown { get; init; }

    /// <summary>
    /// Where set, a <see cref="Profiling.RipSampler"/> recalls every vCPU this often and records its RIP; the run's
    /// <see cref="MachineResult.Profile"/> has the counts. Null (the default) for none: then nothing samples and no handler
    /// is added. 1 ms to 1 s; each sample is one exit.
    /// </summary>
    public TimeSpan? ProfileInterval { get; init; }

    /// <summary>Whether the guest gets a virtio-rng entropy device (fed from the host's <c>getrandom</c>).</summary>
    public bool Rng { get; init; }

    /// <summary>The virtio-blk disks, in order (the guest's /dev/vda, /dev/vdb, …).</summary>
    public IReadOnlyList<DiskOptions> Disks { get; init; } = [];

    /// <summary>The virtio-net cards, in order (the guest's eth0, eth1, …), each on a host TAP interface.</summary>
    public IReadOnlyList<NetOptions> Networks { get; init; } = [];

    /// <summary>
    /// The virtio-vsock device (Firecracker's hybrid vsock: host programs connect to a Unix socket); null for none.
    /// </summary>
    public VsockOptions? Vsock { get; init; }

    /// <summary>
    /// Which device carries the guest's console: COM1 (<see cref="ConsoleDevice.Serial"/>, always present) or a
    /// virtio-console port (the guest's hvc0; give it <c>console=hvc0</c>) that then gets <see cref="Console"/>'s output and input.
    /// </summary>
    public ConsoleDevice ConsoleDevice { get; init; } = ConsoleDevice.Serial;

    /// <summary>
    /// Whether the virtio-mmio devices are also named on the kernel command line (<c>virtio_mmio.device=</c>), for kernels
    /// built with <c>CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES</c>; the ACPI DSDT describes them either way.
    /// </summary>
    public bool VirtioOnCommandLine { get; init; } = true;

    /// <summary>
    /// Whether KVM logs the pages the guest writes, so that <see cref="PcMachine.CreateSnapshot"/> can make diff snapshots
    /// (Firecracker's <c>track_dirty_pages</c>). Off by default: on hosts that shadow the guest's page tables it makes the
    /// guest's first write to each page fault into KVM after every snapshot.
    /// </summary>
    public bool TrackDirtyPages { get; init; }
}

/// <summary>A virtio-blk disk: a raw image file.</summary>
/// <param name="Path">The image file.</param>
public sealed record DiskOptions(string Path)
{
    /// <summary>Whether the guest may only read it (<c>VIRTIO_BLK_F_RO</c>; the file is opened read-only).</summary>
    public bool ReadOnly { get; init; }

    /// <summary>The serial number GET_ID answers (at most 20 bytes); null for none.</summary>
    public string? Serial { get; init; }
}

/// <summary>A virtio-net card on a host TAP interface.</summary>
/// <param name="Tap">The TAP interface to attach to (created if it does not exist and the process may).</param>
public sealed record NetOptions(string Tap)
{
    /// <summary>The guest's MAC address (6 bytes); null for 52:54:00:12:34:5N, N the card's index.</summary>
    public byte[]? Mac { get; init; }
}

/// <summary>A virtio-vsock device whose host side is a Unix socket (Firecracker's hybrid vsock).</summary>
/// <param name="GuestCid">The guest's context id, 3 or more.</param>
/// <param name="SocketPath">
/// The Unix socket the machine creates (and removes when disposed): a host program connects and writes
/// <c>CONNECT port\n</c>; the guest's connections to host port P go to <c>SocketPath_P</c>.
/// </param>
public sealed record VsockOptions(ulong GuestCid, string SocketPath);

/// <summary>The device that carries the guest's console.</summary>
public enum ConsoleDevice
{
    /// <summary>COM1, the 8250 UART (ttyS0).</summary>
    Serial,

    /// <summary>A virtio-console port (hvc0).</summary>
    Virtio,
}

/// <summary>What a guest's reset request does.</summary>
public enum ResetAction
{
    /// <summary>End the run with <see cref="MachineOptions.ResetExitStatus"/> and the reason "guest requested reset" (QEMU's <c>-no-reboot</c>).</summary>
    Exit,

    /// <summary>
    /// Boot again on a fresh machine, as a PC reboots (QEMU's default); <see cref="MachineRunner"/> does this,
    /// up to <see cref="MachineOptions.MaxReboots"/> times.
    /// </summary>
    Reboot,
}
