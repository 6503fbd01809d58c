using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using VmmSharp.Arch.X86;
using VmmSharp.Arch.X86.Acpi;
using VmmSharp.Boot;
using VmmSharp.Buses;
using VmmSharp.Devices.Consoles;
using VmmSharp.Devices.Legacy;
using VmmSharp.Dispatch;
using VmmSharp.Emulation;
using VmmSharp.Kvm;
using VmmSharp.Memory;
using VmmSharp.Profiling;
using VmmSharp.Vm;
using DebugExitDevice = VmmSharp.Devices.Legacy.DebugExit;

namespace VmmSharp.Machine;

/// <summary>
/// A PC that boots a kernel directly, like QEMU's <c>-kernel</c>: PVH ELF kernels (Linux's <c>vmlinux</c>),
/// Multiboot v1 kernels and Linux bzImages, with an optional initrd and command line, on KVM with its in-kernel
/// irqchip (PIC, IOAPIC, LAPICs) and PIT.
/// </summary>
/// <remarks>
/// <para>Devices: COM1 (16550A at 0x3f8, IRQ 4), the i8042 (0x60/0x64; its reset line ends the run, see
/// <see cref="MachineOptions.OnReset"/>), the CMOS RTC (0x70), QEMU's isa-debug-exit (0xf4, status (v &lt;&lt; 1) | 1)
/// and QEMU's fw_cfg (0x510: CPU count, RAM size, command line, kernel and initrd sizes). Other ports read all ones
/// and ignore writes (logged at Debug), as does MMIO that no RAM or in-kernel device backs.</para>
/// <para>The MP table describes the CPUs and the IOAPIC; IRQ 0 (the PIT) arrives on IOAPIC pin 2, as on a PC and in
/// QEMU, through the GSI routing this machine installs.</para>
/// <para>Construction validates the options and loads the kernel; <see cref="Run"/> runs the guest once. Errors in the
/// options or the images are thrown from the constructor: <see cref="MachineConfigurationException"/> (a missing file,
/// a memory size or CPU count that cannot be used), <see cref="InvalidKernelImageException"/> (a kernel or initrd that
/// cannot be booted), <see cref="KvmUnavailableException"/> (no usable /dev/kvm). All are <see cref="VmmException"/>s
/// whose message names the offending value.</para>
/// </remarks>
public sealed partial class PcMachine : IDisposable
{
    /// <summary>The emulation fallback's counts so far (null when <see cref="MachineOptions.EmulationFallback"/> is off).</summary>
    public EmulationStatistics? EmulationStatistics => _fallback?.Statistics;

    /// <summary>COM1's base port.</summary>
    public const ushort Com1Port = 0x3f8;

    /// <summary>COM1's ISA IRQ.</summary>
    public const uint Com1Irq = 4;

    /// <summary>The keyboard controller's ISA IRQ.</summary>
    public const uint KeyboardIrq = 1;

    /// <summary>The mouse's ISA IRQ.</summary>
    public const uint AuxIrq = 12;

    /// <summary>The ISA IRQ of the x87's legacy error signal (FERR#), raised for an x87 error while CR0.NE is clear.</summary>
    public const uint FpuErrorIrq = 13;

    private const uint MpStateUninitialized = 1;

    private readonly MachineOptions _options;
    private readonly ILogger _logger;
    private readonly VirtualMachine _vm;
    private readonly EmulationFallback? _fallback;
    private readonly RipSampler? _sampler;
    private readonly ConsoleOutput? _ownOutput;
    private readonly bool _restored;
    private StopRequest? _stop;
    private int _runs;
    private bool _disposed;

    /// <summary>Validates <paramref name="options"/>, creates the VM and its devices, and loads the kernel.</summary>
    /// <exception cref="MachineConfigurationException">An option cannot be used; the message names it and its value.</exception>
    /// <exception cref="InvalidKernelImageException">The kernel or initrd cannot be booted; the message names the file.</exception>
    /// <exception cref="KvmUnavailableException">KVM cannot be used here; the message says why.</exception>
    public PcMachine(MachineOptions options)
        : this(options, null)
    {
    }

    /// <summary>Builds the machine; with <paramref name="restore"/>, over its memory file and with its boot record, loading nothing.</summary>
    private PcMachine(MachineOptions options, RestoreSource? restore)
    {
        ArgumentNullException.ThrowIfNull(options);
        _restored = restore is not null;
        _options = options;
        _logger = options.Logger ?? NullLogger.Instance;

        // Everything that can be checked without the host first, and the images read within bounds, before KVM is opened.
        GuestRegionSpec[] regions = ValidateMemory(options.MemorySize);
        ValidateDeadline(options.Deadline);
        ValidateProfileInterval(options.ProfileInterval);
        (byte[] kernel, byte[] initrd) = restore is null ? ReadImages(options) : ([], []);
        KvmSystem kvm = KvmSystem.Open();
        GuestMemory memory;
        try
        {
            ValidateCpuCount(options.CpuCount, kvm);
            ValidateAddressWidth(options.MemorySize, regions, kvm);
            memory = restore is null ? new GuestMemory(regions) : GuestMemory.FromFile(regions, restore.MemoryPath);
        }
        catch (InsufficientMemoryException e)
        {
            kvm.Dispose();
            throw new MachineConfigurationException(nameof(MachineOptions.MemorySize),
                $"guest memory size {Size(options.MemorySize)} cannot be mapped on this host: {e.Message}", e);
        }
        catch
        {
            kvm.Dispose();
            throw;
        }

        try
        {
            _vm = VirtualMachine.Create(memory, irqchip: true, kvm, options.TrackDirtyPages);
        }
        catch
        {
            memory.Dispose();
            kvm.Dispose();
            throw;
        }

        try
        {
            GsiRouting.Apply(_vm.Handle);
            if (_vm.Handle.CheckExtension(KvmCapability.ExitOnEmulationFailure) > 0)
            {
                // Emulation failures then come with the instruction's bytes.
                _vm.Handle.EnableCapability(KvmCapability.ExitOnEmulationFailure, 1);
            }
            if (options.EmulationFallback)
            {
                IrqchipLine ferr = IrqchipLine.For(_vm.Handle, FpuErrorIrq);
                _fallback = new EmulationFallback(new GuestPhysicalSpace(memory, MmioBus)) // SSE/AVX moves KVM cannot emulate reach the virtio devices too
                {
                    FloatingPointError = () =>
                    {
                        ferr.Set(true);
                        ferr.Set(false);
                    },
                };
            }
            IReadOnlyList<HiddenCpuidFeature> hidden = CpuidPolicies.Hidden(options.CpuidPolicy, HostVirtualization.Kind);
            _vm.CpuidMasks = [.. hidden.Select(h => h.Mask), .. options.CpuidMasks];
            if (hidden.Count > 0 && _logger.IsEnabled(LogLevel.Debug))
            {
                string names = string.Join(", ", hidden.Select(h => h.Name));
                LogCpuidPolicy(_logger, options.CpuidPolicy, HostVirtualization.Kind, names);
            }
            _vm.CpuCount = options.CpuCount;

            ConsoleOutput output = options.Console?.Output ?? (_ownOutput = new ConsoleOutput(Stream.Null, ConsoleOutput.SpaceThreshold));
            List<Devices.Virtio.VirtioDevice> virtio = CreateVirtioModels(options, output, _logger);
            _virtioModels = virtio;
            MmioDeviceSlot[] slots = VirtioSlots(virtio.Count);
            CommandLine = options.VirtioOnCommandLine ? WithVirtioCommandLine(options.CommandLine, slots) : options.CommandLine;
            Boot = restore?.Boot ?? LoadKernel(memory, kernel, initrd, slots);
            AttachVirtio(virtio, slots);
            IoBus = new IoBus(_logger);
            Serial = new Serial8250(output, IrqchipLine.For(_vm.Handle, Com1Irq));
            IoBus.Register(Com1Port, Serial8250.PortCount, Serial);
            Keyboard = new I8042(OnGuestReset, IrqchipLine.For(_vm.Handle, KeyboardIrq), IrqchipLine.For(_vm.Handle, AuxIrq));
            IoBus.Register(I8042.DataPortAddress, 1, Keyboard.DataPort);
            IoBus.Register(I8042.CommandPortAddress, 1, Keyboard.CommandPort);
            ulong below4G = Math.Min(options.MemorySize, Layout.MmioHoleStart);
            _cmos = new CmosRtc(below4G, options.MemorySize - below4G);
            IoBus.Register(CmosRtc.DefaultPort, CmosRtc.PortCount, _cmos);
            IoBus.Register(DebugExitDevice.DefaultPort, DebugExitDevice.DefaultPortCount, new DebugExitDevice(OnDebugExit));
            _acpiSleep = new AcpiSleepControl(OnAcpiSleep);
            IoBus.Register(Layout.AcpiSleepControlPort, AcpiSleepControl.PortCount, _acpiSleep);
            _fwCfg = new FwCfg(new FwCfgOptions
            {
                CpuCount = (ushort)options.CpuCount,
                RamSize = options.MemorySize,
                CommandLine = CommandLine.Length == 0 ? null : CommandLine,
                CommandLineAddress = (uint)Boot.CommandLineAddress,
                KernelAddress = (uint)Boot.KernelStart,
                KernelSize = (uint)(restore is null ? (ulong)kernel.Length : Boot.KernelEnd - Boot.KernelStart),
                InitrdAddress = (uint)(Boot.InitrdAddress ?? 0),
                InitrdSize = (uint)(restore is null ? (ulong)initrd.Length : Boot.InitrdSize),
            });
            IoBus.Register(FwCfg.DefaultPort, FwCfg.PortCount, _fwCfg);

            _sampler = options.ProfileInterval is { } interval ? new RipSampler(interval, maxVcpus: options.CpuCount) : null;
            for (int i = 0; i < options.CpuCount; i++)
            {
                AddVcpu(_vm.AddVcpu());
            }
        }
        catch
        {
            _sampler?.Dispose();
            Serial?.Dispose();
            DisposeVirtio();
            _ownOutput?.Dispose();
            _vm.Dispose();
            throw;
        }
        if (HostVirtualization.Kind == HostVirtualizationKind.Pvm)
        {
            LogPvm(_logger, HostVirtualization.Description);
        }
        string memorySize = Size(options.MemorySize);
        LogLoaded(_logger, Boot.Format, options.KernelPath, memorySize, options.CpuCount, Boot.EntryState.Rip);
    }

    /// <summary>What serves /dev/kvm here: on PVM, guest kernel code is emulated and a full Linux boot does not finish.</summary>
    public static HostVirtualization HostVirtualization => KvmSystem.Virtualization;

    /// <summary>The options the machine was built from.</summary>
    public MachineOptions Options => _options;

    /// <summary>The kernel command line as the guest gets it: the options' plus the virtio-mmio devices.</summary>
    public string CommandLine { get; } = "";

    /// <summary>What the kernel loader did: the format, the entry state, the memory map, where things went.</summary>
    public BootResult Boot { get; }

    /// <summary>The VM: memory, KVM handles and the vCPUs' dispatchers (for adding devices or handlers before <see cref="Run"/>).</summary>
    public VirtualMachine Vm => _vm;

    /// <summary>The I/O-port bus with the legacy devices; more devices may be registered before <see cref="Run"/>.</summary>
    public IoBus IoBus { get; }

    /// <summary>COM1, whose host side is <see cref="MachineOptions.Console"/>; input may also be queued directly (<see cref="Serial8250.EnqueueInput"/>).</summary>
    public Serial8250 Serial { get; }

    /// <summary>The i8042 keyboard controller (its reset line ends or reboots the run); <see cref="I8042.SendCtrlAltDel"/> asks the guest to reboot.</summary>
    public I8042 Keyboard { get; }

    /// <summary>
    /// Runs the guest until it ends the run (debug-exit, shutdown, reset), fails, is stopped with
    /// <see cref="RequestStop"/>, or passes <see cref="MachineOptions.Deadline"/>. A machine runs once.
    /// </summary>
    /// <exception cref="InvalidOperationException">The machine has already run.</exception>
    public MachineResult Run()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Interlocked.Increment(ref _runs) != 1)
        {
            throw new InvalidOperationException("a PcMachine runs once; create another to boot again");
        }
        var receiver = new ConsoleReceiver(this);
        IDisposable? input = _options.Console?.Input?.Start(receiver);
        var clock = Stopwatch.StartNew();
        VcpuRunResult r;
        bool deadlinePassed;
        _events?.Start();
        _sampler?.Start();
        try
        {
            r = _vm.Run(_options.Deadline ?? Timeout.InfiniteTimeSpan, VcpuDispatcher.DefaultStackSize, out deadlinePassed);
        }
        finally
        {
            clock.Stop();
            _sampler?.Stop();
            _events?.Stop(TimeSpan.FromSeconds(2));
            // First cut the input off from this machine, then stop it: a reader thread that is slow to end finds
            // the receiver inert and never reaches the machine after Dispose.
            receiver.Close();
            input?.Dispose();
        }

        MachineResult result;
        if (_stop is { } stop)
        {
            result = Result(stop.Outcome, stop.Status, stop.Reason, null, clock.Elapsed);
        }
        else if (deadlinePassed)
        {
            result = Result(MachineOutcome.DeadlineExceeded, MachineResult.DeadlineStatus, r.Reason, null, clock.Elapsed);
        }
        else
        {
            result = r.Outcome switch
            {
                VcpuRunOutcome.Failed => Result(MachineOutcome.Failed, MachineResult.FailureStatus, r.Reason, r.Error, clock.Elapsed),
                VcpuRunOutcome.Cancelled => Result(MachineOutcome.Stopped, 0, r.Reason, null, clock.Elapsed),
                _ => Result(MachineOutcome.Stopped, r.Status, r.Reason, null, clock.Elapsed),
            };
        }
        LogFinished(_logger, result.Outcome, result.ExitStatus, result.Reason, result.Elapsed.TotalMilliseconds);
        return result;
    }

    /// <summary>
    /// Ends the run from any thread (a signal handler, a UI): <see cref="Run"/> returns <see cref="MachineOutcome.Stopped"/>
    /// with <paramref name="status"/> and <paramref name="reason"/>. Has no effect once the run has ended some other way.
    /// </summary>
    public void RequestStop(int status, string reason)
    {
        SetStop(MachineOutcome.Stopped, status, reason);
        foreach (VcpuDispatcher v in _vm.Vcpus)
        {
            v.RequestStop();
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _sampler?.Dispose();
        // Detach COM1 from the console first: its writer thread must not raise an interrupt on a VM being torn down.
        Serial.Dispose();
        DisposeVirtio();
        _ownOutput?.Dispose();
        _vm.Dispose();
    }

    private void AddVcpu(VcpuDispatcher vcpu)
    {
        // A restored vCPU's state comes from the snapshot, set before it runs: no Startup portal.
        bool ok = _restored || (vcpu.Id.Value == 0
            ? vcpu.Register(VcpuEvent.Startup, EntryStateExtensions.RequiredMtd, s => Boot.EntryState.ApplyTo(s))
            // An AP waits for INIT/SIPI from the BSP, which the in-kernel LAPIC delivers.
            : vcpu.Register(VcpuEvent.Startup, Mtd.None, s => s.Vcpu.SetMpState(MpStateUninitialized)));
        ok &= vcpu.Register(VcpuEvent.Io, Mtd.Qual, OnIo);
        ok &= vcpu.Register(VcpuEvent.Mmio, Mtd.Qual, OnMmio);
        ok &= vcpu.Register(VcpuEvent.Shutdown, Mtd.Rip, OnShutdown);
        // Emulation failures go to the fallback; every other internal error, and what it cannot emulate, to OnInternalError.
        ok &= _fallback is null
            ? vcpu.Register(VcpuEvent.InternalError, Mtd.Qual, OnInternalError)
            : _fallback.Register(vcpu, OnInternalError, Mtd.Qual);
        ok &= vcpu.Register(VcpuEvent.EntryFailure, Mtd.Qual, OnEntryFailure);
        ok &= vcpu.Register(VcpuEvent.SystemEvent, Mtd.Qual, OnSystemEvent);
        ok &= _sampler?.Attach(vcpu) ?? true;
        if (!ok)
        {
            throw new VmmException($"vCPU {vcpu.Id.Value}: this host's KVM cannot deliver an event the PC machine handles");
        }
    }

    private void OnDebugExit(int status) => SetStop(MachineOutcome.DebugExit, status, $"guest wrote to the debug-exit port: status {status}");

    private void OnAcpiSleep(int sleepType)
    {
        if (sleepType == AcpiTables.S5SleepType)
        {
            SetStop(MachineOutcome.Shutdown, 0, "guest powered off (ACPI S5)");
        }
        else
        {
            LogUnsupportedSleep(_logger, sleepType);
        }
    }

    private void OnGuestReset() => SetStop(MachineOutcome.Reset, _options.ResetExitStatus, "guest requested reset");

    private void SetStop(MachineOutcome outcome, int status, string reason)
        => Interlocked.CompareExchange(ref _stop, new StopRequest(outcome, status, reason), null);

    private MachineResult Result(MachineOutcome outcome, int status, string reason, Exception? error, TimeSpan elapsed)
    {
        return new MachineResult
        {
            Outcome = outcome,
            ExitStatus = status,
            Reason = reason,
            Elapsed = elapsed,
            ExitCounts = _vm.ExitCounts(),
            EmulatedInstructions = _fallback?.Statistics.Snapshot() ?? [],
            KvmStatistics = KvmStatistics(),
            Profile = _sampler?.Profile(),
            Error = error,
        };
    }

    // Read once the vCPUs have stopped; a kernel without binary statistics, or one that refuses them, gives none.
    private Dictionary<string, long> KvmStatistics()
    {
        var sum = new Dictionary<string, long>();
        try
        {
            foreach (VcpuDispatcher v in _vm.Vcpus)
            {
                foreach ((string name, long value) in v.Vcpu.ReadStatistics())
                {
                    sum[name] = sum.GetValueOrDefault(name) + value;
                }
            }
        }
        catch (VmmException e)
        {
            LogNoKvmStatistics(_logger, e.Message);
        }
        return sum;
    }

    private BootResult LoadKernel(GuestMemory memory, byte[] kernel, byte[] initrd, IReadOnlyList<MmioDeviceSlot> virtio)
    {
        var request = new BootRequest(kernel, _options.KernelPath)
        {
            Initrd = initrd,
            InitrdPath = _options.InitrdPath ?? "initrd",
            CommandLine = CommandLine,
            CpuCount = _options.CpuCount,
            VirtioMmioDevices = virtio,
        };
        try
        {
            return KernelLoader.Load(memory, request);
        }
        catch (InvalidKernelImageException e)
        {
            throw new InvalidKernelImageException($"kernel image '{_options.KernelPath}'{(initrd.Length > 0 ? $" (initrd '{_options.InitrdPath}')" : "")}: {e.Message}", e);
        }
        catch (ArgumentException e) when (e is not ArgumentOutOfRangeException)
        {
            throw MachineConfigurationException.FromArgument(nameof(MachineOptions.CommandLine), e, $"kernel command line of {CommandLine.Length} characters: ");
        }
    }

    private sealed record StopRequest(MachineOutcome Outcome, int Status, string Reason);
}
