using VmmSharp.Arch.X86;
using VmmSharp.Dispatch;
using VmmSharp.Kvm;
using VmmSharp.Memory;

namespace VmmSharp.Vm;

/// <summary>
/// A VM with its guest memory and its vCPUs, each run by a <see cref="VcpuDispatcher"/>.
/// It owns the KVM handles and the memory it was given, and releases them on dispose.
/// </summary>
/// <remarks>
/// <para>
/// Ownership: the VM owns its <see cref="GuestMemory"/> from the call to <see cref="Create(GuestMemory, bool, KvmSystem)"/>
/// on: it maps each region into a KVM memory slot, refuses <see cref="GuestMemory.Dispose"/> meanwhile, and unmaps the
/// memory itself when it is disposed, but only once no vCPU can touch it any more (a vCPU still running at dispose
/// defers that to the end of its run). If <c>Create</c> fails, it disposes the memory and the KVM system it was given,
/// so a caller never has to clean up after a failed <c>Create</c>; memory that another VM owns is refused and left alone.
/// </para>
/// <para>
/// Threading: <see cref="AddVcpu"/>, <see cref="Run(TimeSpan, int)"/>, the CPUID settings and <see cref="Dispose"/> belong
/// to the thread that owns the VM (one at a time). <see cref="Recall"/> and <see cref="Release"/> may be called from any
/// thread at any time, also after dispose (then they do nothing); <see cref="ExitCounts"/>, <see cref="Vcpus"/> and
/// the indexer may be read from any thread once the vCPUs have been added; <see cref="Memory"/> follows
/// <see cref="GuestMemory"/>'s rules.
/// </para>
/// </remarks>
public sealed partial class VirtualMachine : IDisposable
{
    private readonly List<VcpuDispatcher> _vcpus = [];
    private readonly KvmCpuidEntry[] _supportedCpuid;
    private readonly Lock _stateLock = new();
    private int _cpuCount = 1;
    private VmState _state = VmState.Configured;
    private bool _started;
    private bool _disposed;

    private VirtualMachine(KvmSystem kvm, KvmVm vm, GuestMemory memory)
    {
        Kvm = kvm;
        Handle = vm;
        Memory = memory;
        _supportedCpuid = kvm.GetSupportedCpuid();
    }

    /// <summary>The KVM system.</summary>
    public KvmSystem Kvm { get; }

    /// <summary>The KVM VM.</summary>
    public KvmVm Handle { get; }

    /// <summary>The guest's memory.</summary>
    public GuestMemory Memory { get; }

    /// <summary>Where the VM is in its life (see <see cref="VmState"/>). Any thread.</summary>
    public VmState State
    {
        get
        {
            lock (_stateLock)
            {
                return _state;
            }
        }
    }

    /// <summary>How long <see cref="Pause"/> waits for the vCPUs to park before it gives up.</summary>
    public static readonly TimeSpan PauseTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The vCPUs' dispatchers, by vCPU id.</summary>
    public IReadOnlyList<VcpuDispatcher> Vcpus => _vcpus;

    /// <summary>CPUID bits hidden from every vCPU created after this is set.</summary>
    public IReadOnlyList<CpuidMask> CpuidMasks { get; set; } = [];

    /// <summary>
    /// How many vCPUs the VM has: every vCPU's CPUID describes this many, so it is set before the first
    /// <see cref="AddVcpu"/> and <see cref="AddVcpu"/> creates no more. 1 unless set.
    /// </summary>
    /// <exception cref="InvalidOperationException">Set after a vCPU was added.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Set to less than 1 or more than 255.</exception>
    public int CpuCount
    {
        get => _cpuCount;
        set
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 255);
            if (_vcpus.Count > 0)
            {
                throw new InvalidOperationException($"the CPU count is fixed once vCPUs exist ({_vcpus.Count} created for {_cpuCount})");
            }
            _cpuCount = value;
        }
    }

    /// <summary>
    /// Creates a VM over <paramref name="memory"/> (which it then owns, also if this fails), optionally with the
    /// in-kernel irqchip and PIT.
    /// </summary>
    /// <exception cref="KvmUnavailableException">KVM cannot be used here; the message says why.</exception>
    public static VirtualMachine Create(GuestMemory memory, bool irqchip = false)
    {
        ArgumentNullException.ThrowIfNull(memory);
        KvmSystem kvm;
        try
        {
            kvm = KvmSystem.Open();
        }
        catch
        {
            memory.Dispose();
            throw;
        }
        return Create(memory, irqchip, kvm);
    }

    /// <summary>
    /// Creates a VM over <paramref name="memory"/> with an already open <paramref name="kvm"/>; the VM then owns both,
    /// and if this fails it disposes both.
    /// </summary>
    /// <exception cref="InvalidOperationException">Another VM owns <paramref name="memory"/> (which is then left alone).</exception>
    public static VirtualMachine Create(GuestMemory memory, bool irqchip, KvmSystem kvm) => Create(memory, irqchip, kvm, trackDirtyPages: false);

    /// <summary>
    /// Like <see cref="Create(GuestMemory, bool, KvmSystem)"/>; with <paramref name="trackDirtyPages"/> KVM logs the pages
    /// the guest writes (<c>KVM_MEM_LOG_DIRTY_PAGES</c>), for diff snapshots (<see cref="GetDirtyPages"/>).
    /// </summary>
    public static VirtualMachine Create(GuestMemory memory, bool irqchip, KvmSystem kvm, bool trackDirtyPages)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(kvm);
        try
        {
            memory.ClaimForVm();
        }
        catch (InvalidOperationException) // owned by another VM, or disposed (ObjectDisposedException)
        {
            kvm.Dispose();
            throw;
        }
        KvmVm? vm = null;
        try
        {
            vm = kvm.CreateVm();
            // Intel hosts need these pages below 4 GiB; elsewhere the calls are harmless.
            if (vm.CheckExtension(KvmCapability.SetTssAddr) > 0)
            {
                vm.SetTssAddress(0xfffb_d000);
            }
            // Memory before the irqchip: the other way round, KVM spends about 7 ms on the first memory slot.
            MapSlots(vm, memory, trackDirtyPages);
            if (irqchip)
            {
                vm.CreateIrqchip();
                vm.CreatePit();
            }
            if (trackDirtyPages)
            {
                memory.StartHostWriteLog(); // the device models' writes, which KVM's log does not see
            }
            return new VirtualMachine(kvm, vm, memory) { TracksDirtyPages = trackDirtyPages };
        }
        catch
        {
            vm?.Dispose();
            kvm.Dispose();
            memory.ReleaseFromVm();
            throw;
        }
    }

    /// <summary>Gives each region of <paramref name="memory"/> a memory slot of its own, read-only regions read-only.</summary>
    private static void MapSlots(KvmVm vm, GuestMemory memory, bool trackDirtyPages)
    {
        uint slot = 0;
        foreach (GuestRegion region in memory.Regions)
        {
            vm.SetUserMemoryRegion(new KvmMemorySlot(slot++, region.GuestAddress, region.Size, region.HostAddress, region.ReadOnly)
            {
                LogDirtyPages = trackDirtyPages && !region.ReadOnly,
            });
        }
    }

    /// <summary>
    /// Creates the next vCPU, with CPUID from KVM's supported leaves describing <see cref="CpuCount"/> CPUs, and
    /// returns its dispatcher.
    /// </summary>
    /// <exception cref="InvalidOperationException"><see cref="CpuCount"/> vCPUs exist already.</exception>
    public VcpuDispatcher AddVcpu()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_vcpus.Count >= _cpuCount)
        {
            throw new InvalidOperationException($"the VM has {_cpuCount} CPU(s) and all exist: set CpuCount before adding the first vCPU");
        }
        KvmVcpu vcpu = Handle.CreateVcpu(_vcpus.Count);
        try
        {
            vcpu.SetCpuid(Cpuid.ForVcpu(_supportedCpuid, vcpu.Id, _cpuCount, CpuidMasks));
        }
        catch
        {
            vcpu.Dispose();
            throw;
        }
        var dispatcher = new VcpuDispatcher(vcpu, Memory);
        _vcpus.Add(dispatcher);
        return dispatcher;
    }

    /// <summary>How many times each event was delivered, summed over the vCPUs; events never delivered are left out.</summary>
    public IReadOnlyDictionary<VcpuEvent, long> ExitCounts()
    {
        var counts = new Dictionary<VcpuEvent, long>();
        foreach (VcpuEvent ev in Enum.GetValues<VcpuEvent>())
        {
            long n = _vcpus.Sum(v => v.ExitCount(ev));
            if (n != 0)
            {
                counts[ev] = n;
            }
        }
        return counts;
    }

    /// <summary>The dispatcher of vCPU <paramref name="id"/>.</summary>
    public VcpuDispatcher this[VcpuId id] => _vcpus[id.Value];

    /// <summary>Recalls vCPU <paramref name="id"/> (see <see cref="VcpuDispatcher.Recall"/>).</summary>
    public void Recall(VcpuId id) => this[id].Recall();

    /// <summary>Releases blocked vCPU <paramref name="id"/> (see <see cref="VcpuDispatcher.Release"/>).</summary>
    public void Release(VcpuId id) => this[id].Release();

    /// <summary>
    /// Pauses a running VM: recalls every vCPU (<see cref="VcpuDispatcher.Pause"/>) and returns once all are parked
    /// outside <c>KVM_RUN</c> with their pending I/O completed. Any thread.
    /// </summary>
    /// <exception cref="InvalidOperationException">The VM is not <see cref="VmState.Running"/> (the message says what it is),
    /// or its run ended while it was being paused.</exception>
    /// <exception cref="VmmException">A vCPU did not park within <see cref="PauseTimeout"/> (a handler is stuck); the VM runs on.</exception>
    public void Pause()
    {
        lock (_stateLock)
        {
            ThrowUnless(VmState.Running, "pause");
            foreach (VcpuDispatcher v in _vcpus)
            {
                v.Pause();
            }
            long end = Environment.TickCount64 + (long)PauseTimeout.TotalMilliseconds;
            foreach (VcpuDispatcher v in _vcpus)
            {
                if (!v.WaitUntilPaused(TimeSpan.FromMilliseconds(Math.Max(0, end - Environment.TickCount64))))
                {
                    ResumeVcpus();
                    throw new VmmException($"vCPU {v.Id.Value} did not pause within {PauseTimeout.TotalSeconds:0} s: one of its handlers is still running");
                }
            }
            if (_vcpus.Any(v => v.Completion.IsCompleted))
            {
                ResumeVcpus();
                string why = string.Join("; ", _vcpus.Where(v => v.Completion.IsCompleted).Select(v => $"vCPU {v.Id.Value}: {v.Completion.Result.Reason}"));
                throw new InvalidOperationException($"cannot pause the VM: its run ended while it was being paused ({why})");
            }
            _state = VmState.Paused;
        }
    }

    /// <summary>Lets a paused VM run on: releases every parked vCPU. Any thread.</summary>
    /// <exception cref="InvalidOperationException">The VM is not <see cref="VmState.Paused"/>, or is a restored VM whose
    /// <see cref="Run(TimeSpan, int)"/> has not begun (Run starts it).</exception>
    public void Resume()
    {
        lock (_stateLock)
        {
            ThrowUnless(VmState.Paused, "resume");
            if (!_started)
            {
                throw new InvalidOperationException("cannot resume the VM: it has not been started; Run starts a restored VM");
            }
            ResumeVcpus();
            _state = VmState.Running;
        }
    }

    /// <summary>
    /// Marks a VM whose state was just restored from a snapshot (before it ever ran) as <see cref="VmState.Paused"/>:
    /// <see cref="Run(TimeSpan, int)"/> then continues the restored guest.
    /// </summary>
    /// <exception cref="InvalidOperationException">The VM is not <see cref="VmState.Configured"/>.</exception>
    public void MarkRestored()
    {
        lock (_stateLock)
        {
            ThrowUnless(VmState.Configured, "mark as restored");
            _state = VmState.Paused;
        }
    }

    /// <summary>Throws unless the VM is paused: for operations that need the vCPUs to hold still (snapshot, restore).</summary>
    /// <exception cref="InvalidOperationException">The VM is not <see cref="VmState.Paused"/>.</exception>
    public void EnsurePaused(string operation)
    {
        lock (_stateLock)
        {
            ThrowUnless(VmState.Paused, operation);
        }
    }

    private void ThrowUnless(VmState expected, string operation)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_state != expected)
        {
            throw new InvalidOperationException($"cannot {operation} the VM: it is {_state.ToString().ToLowerInvariant()}, not {expected.ToString().ToLowerInvariant()}");
        }
    }

    private void ResumeVcpus()
    {
        foreach (VcpuDispatcher v in _vcpus)
        {
            v.Resume();
        }
    }

    /// <summary>
    /// Starts every vCPU on a thread of its own and waits until one ends its run, or
    /// <paramref name="deadline"/> passes. Then stops the others and returns the result that ended the VM;
    /// past the deadline, a failure that says where each vCPU was.
    /// </summary>
    public VcpuRunResult Run(TimeSpan deadline, int stackSize = VcpuDispatcher.DefaultStackSize)
        => Run(deadline, stackSize, out _);

    /// <summary>Like <see cref="Run(TimeSpan, int)"/>; <paramref name="deadlinePassed"/> tells whether the deadline ended it.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="deadline"/> is negative or beyond <see cref="int.MaxValue"/> ms (and not infinite); no vCPU was started.</exception>
    public VcpuRunResult Run(TimeSpan deadline, int stackSize, out bool deadlinePassed)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_vcpus.Count == 0)
        {
            throw new InvalidOperationException("the VM has no vCPUs: call AddVcpu first");
        }
        // Checked before any vCPU starts: a bad deadline must not leave a running guest behind an exception.
        if (deadline != Timeout.InfiniteTimeSpan && (deadline < TimeSpan.Zero || deadline.TotalMilliseconds > int.MaxValue))
        {
            throw new ArgumentOutOfRangeException(nameof(deadline), deadline, "the deadline must be 0 to int.MaxValue milliseconds, or infinite");
        }
        Task<VcpuRunResult>[] runs;
        lock (_stateLock)
        {
            if (_state is not (VmState.Configured or VmState.Paused) || _started)
            {
                throw new InvalidOperationException($"cannot run the VM: it is {_state.ToString().ToLowerInvariant()}; a VM runs once");
            }
            _started = true;
            _state = VmState.Running;
            runs = [.. _vcpus.Select(v => v.Start(stackSize))];
        }
        try
        {
            return Wait(runs, deadline, out deadlinePassed);
        }
        finally
        {
            lock (_stateLock)
            {
                _state = VmState.Stopped;
            }
        }
    }

    private VcpuRunResult Wait(Task<VcpuRunResult>[] runs, TimeSpan deadline, out bool deadlinePassed)
    {
        int first = Task.WaitAny(runs, deadline);
        deadlinePassed = first < 0;
        VcpuRunResult result;
        if (deadlinePassed)
        {
            StopAll();
            // The vCPUs are out of KVM_RUN now, so their state holds still: say where each one was.
            string where = string.Join("; ", _vcpus.Select(v => v.Completion.IsCompleted
                ? $"vCPU {v.Id.Value} at {FaultReport.Describe(v.Vcpu, Memory)}"
                : $"vCPU {v.Id.Value} did not stop"));
            result = new VcpuRunResult(VcpuRunOutcome.Failed, -1,
                $"the guest did not finish within its deadline of {deadline.TotalSeconds:0.###} s ({where})");
        }
        else
        {
            result = runs[first].Result;
            StopAll();
        }
        return result;
    }

    /// <summary>
    /// For a process about to exit: lets a helper process (<c>cat</c>, holding the VM's file descriptor until this
    /// process has exited) perform the kernel's teardown of the VM, so that the exit does not wait for it. Closing a
    /// VM waits for SRCU grace periods as KVM unregisters the PIT, the irqchip and the MMU notifier: 15–35 ms on the
    /// PVM hosts of this project, most of a short-lived VM's life. The guest's memory is still freed when this
    /// process exits; the helper frees the rest right after. Dispose as usual afterwards (it is then cheap).
    /// </summary>
    /// <returns>True if the helper holds the VM; false, with nothing changed, if none could be started.</returns>
    public bool HandOffTeardown()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return Handle.HandOffTeardown();
    }

    /// <summary>
    /// Stops the vCPUs (waiting a bounded time), closes the vCPUs and the VM, and unmaps the guest memory once no vCPU
    /// can touch it: at once if every vCPU has stopped, else when the last one's run ends.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        lock (_stateLock)
        {
            _state = VmState.Stopped;
        }
        StopAll();
        // A vCPU still in its loop keeps its descriptor and kvm_run open until it leaves (SafeHandle references).
        foreach (VcpuDispatcher v in _vcpus)
        {
            v.Vcpu.Dispose();
        }
        Handle.Dispose();
        Kvm.Dispose();
        Task[] running = [.. _vcpus.Where(v => v.IsStarted && !v.Completion.IsCompleted).Select(v => v.Completion)];
        if (running.Length == 0)
        {
            Memory.ReleaseFromVm();
        }
        else
        {
            _ = Task.WhenAll(running).ContinueWith(_ => Memory.ReleaseFromVm(), CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    /// <summary>How long stopping waits for the vCPUs (a handler may be stuck in a device); tests shorten it.</summary>
    internal TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(10);

    private void StopAll()
    {
        foreach (VcpuDispatcher v in _vcpus)
        {
            v.RequestStop();
        }
        // A started vCPU leaves KVM_RUN at once when kicked; bound the wait all the same.
        Task.WaitAll([.. _vcpus.Where(v => v.IsStarted).Select(v => v.Completion)], StopTimeout);
    }
}
