using System.Diagnostics;
using System.Reflection;
using Microsoft.Extensions.Logging;
using VmmSharp.Cli.Terminal;
using VmmSharp.Devices.Consoles;
using VmmSharp.Machine;

namespace VmmSharp.Cli.Api;

/// <summary>
/// One microVM as Firecracker's API sees it: configured, then started, then (until the guest ends) running or paused.
/// Every request that reads or changes it takes one lock, so requests from several clients apply one after another
/// and none sees another half done. The machine runs on its own thread; the API stays responsive while it does.
/// </summary>
internal sealed class MicroVm : IDisposable
{
    public const string StateNotStarted = "Not started";
    public const string StateRunning = "Running";
    public const string StatePaused = "Paused";

    private static readonly TimeSpan OutputDrainTimeout = TimeSpan.FromSeconds(2);

    private readonly Lock _gate = new();
    private readonly VmConfiguration _config = new();
    private readonly TaskCompletionSource<MachineResult> _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly LogLevel? _cliLogLevel;
    private readonly Stopwatch _uptime = Stopwatch.StartNew();
    private LoggerConfig? _loggerConfig;
    private MetricsConfig? _metricsConfig;
    private MetricsSink? _metrics;
    private MetricsSink? _logSink;
    private Timer? _metricsTimer;
    private PcMachine? _machine;
    private ConsoleOutput? _output;
    private TerminalInput? _input;
    private ILoggerFactory? _logging;
    private bool _ended;
    private bool _restoredNotRun;
    private bool _disposed;
    private int _periodicFlushWaiting;

    /// <param name="cliLogLevel">The command line's <c>--log-level</c>; a <c>PUT /logger</c> level replaces it.</param>
    public MicroVm(LogLevel? cliLogLevel = null)
    {
        _cliLogLevel = cliLogLevel;
    }

    /// <summary>Firecracker's period for metrics lines written without a <c>FlushMetrics</c>: 60 s.</summary>
    public static TimeSpan DefaultMetricsInterval { get; } = TimeSpan.FromSeconds(60);

    /// <summary>How often metrics are written without a <c>FlushMetrics</c> (<c>--metrics-interval</c>); set before the metrics are.</summary>
    public TimeSpan MetricsInterval { get; init; } = DefaultMetricsInterval;

    /// <summary>The instance id <c>GET /</c> reports (Firecracker's without a jailer).</summary>
    public string Id { get; init; } = "anonymous-instance";

    /// <summary>How long the guest may run once started (<c>--timeout</c>); null for no limit.</summary>
    public TimeSpan? Deadline { get; init; }

    /// <summary>The API's own counters, for the metrics.</summary>
    public RequestStatistics Requests { get; } = new();

    /// <summary>The time the last pause, resume and snapshot operations took, for the metrics.</summary>
    public LifecycleLatencies Lifecycle { get; } = new();

    /// <summary>Completes with the machine's result when the guest ends.</summary>
    public Task<MachineResult> Finished => _finished.Task;

    /// <summary>The console output of the running machine (for the summary after it ends); null before the start.</summary>
    public ConsoleOutput? Output => _output;

    public static string Version { get; } =
        typeof(MicroVm).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>Changes the pre-boot configuration (<c>PUT /boot-source</c>, <c>/drives/…</c>, …).</summary>
    /// <exception cref="ApiFault">The microVM has started, or <paramref name="change"/> refused the value.</exception>
    public void Configure(string resource, Action<VmConfiguration> change)
    {
        lock (_gate)
        {
            RequireNotStarted(resource);
            change(_config);
        }
    }

    public void SetLogger(LoggerConfig logger)
    {
        lock (_gate)
        {
            RequireNotStarted("logger");
            _ = ParseLevel(logger.Level);
            if (logger.Module is not null)
            {
                throw new ApiFault("logger: module filters are not supported");
            }
            if (logger.ShowLogOrigin == true)
            {
                throw new ApiFault("logger: show_log_origin is not supported");
            }
            if (logger.LogPath is { } path)
            {
                MetricsSink sink = MetricsSink.Open(path, "log_path");
                _logSink?.Dispose();
                _logSink = sink;
            }
            _loggerConfig = logger;
        }
    }

    public void SetMetrics(MetricsConfig metrics)
    {
        lock (_gate)
        {
            if (_metrics is not null)
            {
                throw new ApiFault($"metrics are already written to '{_metrics.Path}'; they can be configured once");
            }
            if (metrics.EmitId is not null || metrics.Properties is not null)
            {
                throw new ApiFault("metrics: emit_id and properties are not supported");
            }
            _metrics = MetricsSink.Open(metrics.MetricsPath, "metrics_path");
            _metricsConfig = metrics;
            _metricsTimer = new Timer(_ => FlushMetricsQuietly(), null, MetricsInterval, MetricsInterval);
        }
    }

    /// <summary><c>InstanceStart</c>: builds the machine from the configuration and runs it on its own thread.</summary>
    /// <exception cref="ApiFault">It has started already, or the machine cannot be built (the message names the value).</exception>
    public void Start()
    {
        lock (_gate)
        {
            RequireNotStarted("InstanceStart");
            MachineOptions options = _config.ToMachineOptions();
            CreateHost();
            try
            {
                _machine = new PcMachine(options with
                {
                    Console = new HostConsole(_output!, _input),
                    Logger = _logging?.CreateLogger("vmm"),
                    Deadline = Deadline,
                });
            }
            catch (Exception e) when (e is VmmException or IOException or UnauthorizedAccessException)
            {
                DisposeHost();
                throw new ApiFault($"cannot start the microVM: {e.Message}");
            }
            StartThread(_machine);
        }
    }

    /// <summary>The guest's console (stdout, stdin) and the logger, as InstanceStart and snapshot/load build them.</summary>
    private void CreateHost()
    {
        LogLevel? level = _loggerConfig is { } l ? ParseLevel(l.Level) : _cliLogLevel;
        MetricsSink? logSink = _logSink;
        bool showLevel = _loggerConfig?.ShowLevel == true;
        _logging = level is not { } lv || lv == LogLevel.None ? null
            : logSink is not null
                ? LoggerFactory.Create(b => b.AddProvider(new LineLoggerProvider(logSink, lv, showLevel)).SetMinimumLevel(lv))
                : LoggerFactory.Create(b => b
                    .AddSimpleConsole(o => o.SingleLine = true)
                    .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace) // stdout is the guest's
                    .SetMinimumLevel(lv));
        _logSink = _logging is null ? _logSink : null; // the factory's provider owns it now
        _output = ConsoleOutput.StandardOutput();
        _input = TerminalInput.StandardInput();
    }

    private void StartThread(PcMachine machine)
    {
        VmmSharp.Vm.VmState before = machine.State;
        var thread = new Thread(() => RunMachine(machine)) { Name = "vmm machine", IsBackground = true };
        thread.Start();
        // Answer once the guest runs, as Firecracker does: a GET / right after InstanceStart or a resuming
        // snapshot/load says Running. Run leaves the state it found within microseconds of starting; the bound only
        // keeps a thread that never gets the CPU from holding the request forever.
        long end = Environment.TickCount64 + 5000;
        while (machine.State == before && thread.IsAlive && Environment.TickCount64 < end)
        {
            Thread.Sleep(1);
        }
    }

    /// <summary><c>SendCtrlAltDel</c>: Ctrl+Alt+Del on the i8042 keyboard.</summary>
    public void SendCtrlAltDel()
    {
        lock (_gate)
        {
            PcMachine machine = RequireStarted("SendCtrlAltDel");
            if (!machine.Keyboard.SendCtrlAltDel())
            {
                throw new ApiFault("SendCtrlAltDel: the keyboard's output buffer is full (the guest does not read it)");
            }
        }
    }

    /// <summary><c>FlushMetrics</c>: one metrics line now.</summary>
    public void FlushMetrics()
    {
        lock (_gate)
        {
            if (_metrics is null)
            {
                throw new ApiFault("FlushMetrics: metrics are not configured: PUT /metrics first");
            }
            WriteMetrics();
        }
    }

    /// <summary><c>PATCH /vm</c>.</summary>
    public void SetState(VmState state)
    {
        lock (_gate)
        {
            if (state.State is not ("Paused" or "Resumed"))
            {
                throw new ApiFault($"state '{state.State}': give Paused or Resumed");
            }
            bool pause = state.State == "Paused";
            PcMachine machine = RequireStarted(pause ? "pausing" : "resuming");
            long start = Stopwatch.GetTimestamp();
            try
            {
                if (pause)
                {
                    machine.Pause();
                }
                else if (_restoredNotRun)
                {
                    // A restored machine that has not run yet continues in Run, on the machine thread.
                    _restoredNotRun = false;
                    StartThread(machine);
                }
                else
                {
                    machine.Resume();
                }
            }
            catch (Exception e) when (e is InvalidOperationException or VmmException)
            {
                throw new ApiFault(e.Message);
            }
            Lifecycle.Record(pause ? "pause_vm" : "resume_vm", Stopwatch.GetElapsedTime(start));
        }
    }

    /// <summary><c>PUT /snapshot/create</c>: the paused machine's state and memory files.</summary>
    public void CreateSnapshot(SnapshotCreateParams request)
    {
        lock (_gate)
        {
            PcMachine machine = RequireStarted("snapshot/create");
            SnapshotKind kind = request.SnapshotType switch
            {
                null or "Full" => SnapshotKind.Full,
                "Diff" => SnapshotKind.Diff,
                _ => throw new ApiFault($"snapshot_type '{request.SnapshotType}': give Full or Diff"),
            };
            long start = Stopwatch.GetTimestamp();
            try
            {
                _ = machine.CreateSnapshot(request.SnapshotPath, request.MemFilePath, kind);
            }
            catch (Exception e) when (e is InvalidOperationException or VmmException or IOException or UnauthorizedAccessException)
            {
                throw new ApiFault($"snapshot/create: {e.Message}");
            }
            Lifecycle.Record(kind == SnapshotKind.Full ? "full_create_snapshot" : "diff_create_snapshot", Stopwatch.GetElapsedTime(start));
        }
    }

    /// <summary>
    /// <c>PUT /snapshot/load</c>: a machine restored from the files, paused, or running with <c>resume_vm</c>. Only
    /// before <c>InstanceStart</c>; the configuration given so far is not used (the snapshot carries the machine).
    /// </summary>
    public void LoadSnapshot(SnapshotLoadParams request)
    {
        lock (_gate)
        {
            RequireNotStarted("snapshot/load");
            string memory = (request.MemFilePath, request.MemBackend) switch
            {
                ({ } path, null) => path,
                (null, { BackendType: "File" } backend) => backend.BackendPath,
                (null, { } backend) => throw new ApiFault($"mem_backend: backend_type '{backend.BackendType}' is not supported (give File)"),
                (null, null) => throw new ApiFault("snapshot/load: give mem_backend (or the deprecated mem_file_path)"),
                _ => throw new ApiFault("snapshot/load: give mem_backend or mem_file_path, not both"),
            };
            if (request.NetworkOverrides is { Count: > 0 })
            {
                throw new ApiFault("snapshot/load: network_overrides are not supported");
            }
            if (request.ClockRealtime == true)
            {
                throw new ApiFault("snapshot/load: clock_realtime is not supported");
            }
            if (request.HugePages is not (null or "None" or "Snapshot"))
            {
                throw new ApiFault($"snapshot/load: huge_pages '{request.HugePages}' is not supported");
            }
            CreateHost();
            long start = Stopwatch.GetTimestamp();
            try
            {
                _machine = PcMachine.Restore(request.SnapshotPath, memory, o => o with
                {
                    Console = new HostConsole(_output!, _input),
                    Logger = _logging?.CreateLogger("vmm"),
                    Deadline = Deadline,
                });
            }
            catch (Exception e) when (e is VmmException or IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                DisposeHost();
                throw new ApiFault($"snapshot/load: {e.Message}");
            }
            Lifecycle.Record("load_snapshot", Stopwatch.GetElapsedTime(start));
            if (request.ResumeVm == true)
            {
                StartThread(_machine);
            }
            else
            {
                _restoredNotRun = true;
            }
        }
    }

    public InstanceInfo Info()
    {
        lock (_gate)
        {
            return new InstanceInfo { AppName = "vmm", Id = Id, State = State, VmmVersion = Version };
        }
    }

    public MachineConfiguration MachineConfig()
    {
        lock (_gate)
        {
            return _config.Machine;
        }
    }

    public FullVmConfiguration Export()
    {
        lock (_gate)
        {
            return _config.Export(_loggerConfig, _metricsConfig);
        }
    }

    /// <summary>After <see cref="Finished"/>: the last metrics line, the console drained; false if the output did not drain.</summary>
    public bool End()
    {
        lock (_gate)
        {
            _metricsTimer?.Dispose();
            _metricsTimer = null;
            if (_metrics is not null)
            {
                WriteMetrics();
            }
            _input?.Dispose(); // the user's terminal back before anything more is printed
            return _output?.Flush(OutputDrainTimeout) ?? true;
        }
    }

    public void Dispose()
    {
        // A machine still running (the command is ending for another reason) is stopped before it is torn down.
        if (Volatile.Read(ref _machine) is { } running && !Volatile.Read(ref _ended) && !Volatile.Read(ref _restoredNotRun))
        {
            running.RequestStop(MachineResult.FailureStatus, "vmm is exiting");
            _ = Finished.Wait(TimeSpan.FromSeconds(5));
        }
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            _metricsTimer?.Dispose();
            if (_machine is { } machine && (Volatile.Read(ref _ended) || _restoredNotRun))
            {
                // vmm exits right after: KVM's teardown of the VM happens in a helper, off the exit path.
                _ = machine.Vm.HandOffTeardown();
                machine.Dispose();
            }
            _machine = null;
            DisposeHost();
            _metrics?.Dispose();
            _logSink?.Dispose();
        }
    }

    private string State => _machine?.State switch
    {
        null or VmmSharp.Vm.VmState.Configured => StateNotStarted,
        VmmSharp.Vm.VmState.Paused => StatePaused,
        _ => StateRunning,
    };

    private void RunMachine(PcMachine machine)
    {
        MachineResult result;
        try
        {
            result = machine.Run();
        }
        catch (Exception e)
        {
            result = new MachineResult
            {
                Outcome = MachineOutcome.Failed,
                ExitStatus = MachineResult.FailureStatus,
                Reason = $"the machine failed: {e.Message}",
                Error = e,
                Elapsed = TimeSpan.Zero,
                ExitCounts = new Dictionary<VmmSharp.Dispatch.VcpuEvent, long>(),
            };
        }
        Volatile.Write(ref _ended, true);
        _finished.TrySetResult(result);
    }

    private void FlushMetricsQuietly()
    {
        // While a request holds the lock (InstanceStart builds the machine under it), the timer's callbacks would queue
        // on it and then write a burst of lines: one waits, the others let it write for them.
        if (Interlocked.Exchange(ref _periodicFlushWaiting, 1) == 1)
        {
            return;
        }
        lock (_gate)
        {
            Volatile.Write(ref _periodicFlushWaiting, 0);
            if (_metrics is not null && !_disposed)
            {
                WriteMetrics();
            }
        }
    }

    private void WriteMetrics()
    {
        byte[] line = MetricsReport.Build(DateTimeOffset.UtcNow, State, _uptime.Elapsed, _machine, _config, _output, Requests, Lifecycle, _metrics!);
        _metrics!.WriteLine(line);
    }

    private void RequireNotStarted(string what)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_machine is not null)
        {
            throw new ApiFault($"{what}: the microVM has started; this is only possible before InstanceStart");
        }
    }

    private PcMachine RequireStarted(string what)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_machine is null)
        {
            throw new ApiFault($"{what}: the microVM has not started yet (InstanceStart)");
        }
        if (Volatile.Read(ref _ended))
        {
            throw new ApiFault($"{what}: the guest has ended");
        }
        return _machine;
    }

    private void DisposeHost()
    {
        _input?.Dispose();
        _output?.Dispose();
        _logging?.Dispose();
        _input = null;
        _output = null;
        _logging = null;
    }

    private static LogLevel? ParseLevel(string? level) => level?.ToUpperInvariant() switch
    {
        null => LogLevel.Information,
        "ERROR" => LogLevel.Error,
        "WARNING" => LogLevel.Warning,
        "INFO" => LogLevel.Information,
        "DEBUG" => LogLevel.Debug,
        "TRACE" => LogLevel.Trace,
        "OFF" => LogLevel.None,
        _ => throw new ApiFault($"logger: level '{level}': give Error, Warning, Info, Debug, Trace or Off"),
    };
}
