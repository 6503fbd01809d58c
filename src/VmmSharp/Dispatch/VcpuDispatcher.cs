using VmmSharp.Interop;
using VmmSharp.Kvm;
using VmmSharp.Memory;

namespace VmmSharp.Dispatch;

/// <summary>
/// Runs one vCPU: its <c>KVM_RUN</c> loop and the handlers registered for its events, on one thread.
/// This is the seed's <c>Vcpu_dispatcher</c>: each event has a portal (a handler and its MTD) in a table
/// indexed by event; the handler runs while the guest waits, and returning from it is the reply.
/// </summary>
/// <remarks>
/// Register handlers, then either <see cref="Start"/> the dispatcher on a thread of its own with a
/// given stack size, or <see cref="Run"/> it on a thread the caller brings. Any thread may then
/// <see cref="Recall"/>, <see cref="Release"/> or <see cref="RequestStop"/> it.
/// The exit path allocates nothing and makes no ioctl beyond what the handler's MTD asks for.
/// <para>
/// Threading: <see cref="Register"/> and <see cref="Start"/>/<see cref="Run"/> may be called from any thread and are
/// atomic with respect to each other (a registration either takes part in the run or returns false).
/// <see cref="Recall"/>, <see cref="Release"/>, <see cref="RequestStop"/> and the counters may be called from any thread
/// at any time, also after the vCPU was disposed: then the first three do nothing. <see cref="Start"/>,
/// <see cref="Run"/> and <see cref="Register"/> on a disposed vCPU throw <see cref="ObjectDisposedException"/>.
/// While the loop runs it keeps the vCPU's <c>kvm_run</c> mapping alive, so a dispose meanwhile ends the run
/// instead of pulling the page away under it.
/// </para>
/// <para>
/// MSR exits are VM-wide in KVM: once any vCPU registers <see cref="VcpuEvent.MsrRead"/> or
/// <see cref="VcpuEvent.MsrWrite"/>, every vCPU of the VM sees such exits. A dispatcher without a handler for one
/// answers it as KVM alone would have: an MSR KVM does not know, or an invalid access, raises #GP in the guest
/// (<c>kvm_run.msr.error</c> = 1); an MSR trapped only by <see cref="KvmVm.TrapMsrs"/> is read or written for the
/// guest through <c>KVM_GET_MSRS</c>/<c>KVM_SET_MSRS</c>, #GP if KVM refuses.
/// </para>
/// </remarks>
public sealed unsafe class VcpuDispatcher
{
    /// <summary>The stack size <see cref="Start"/> uses when none is given.</summary>
    public const int DefaultStackSize = 256 * 1024;

    private static readonly int EventCount = Enum.GetValues<VcpuEvent>().Length;

    private readonly KvmVcpu _vcpu;
    private readonly KvmRun* _run;
    private readonly GuestMemory? _memory;
    private readonly Portal[] _portals;
    private readonly long[] _exits;
    private readonly VcpuState _state;
    private readonly bool _syncRegs;
    private readonly TaskCompletionSource<VcpuRunResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _kickLock = new();
    private readonly Lock _registrationLock = new();
    private readonly object _blockLock = new();
    private int _started;
    private int _recallPending;
    private volatile bool _stopRequested;
    private volatile bool _pauseRequested;
    private bool _parked; // the rest under _blockLock
    private int _parkedAt;
    private int _resumes;
    private bool _withdrawnPause;
    private int _releases;
    private nuint _thread;
    private bool _threadAlive;

    /// <summary>Creates the dispatcher of <paramref name="vcpu"/>.</summary>
    /// <param name="vcpu">The vCPU to run.</param>
    /// <param name="memory">The guest's memory, used to show the faulting instruction in error messages.</param>
    public VcpuDispatcher(KvmVcpu vcpu, GuestMemory? memory = null)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        _vcpu = vcpu;
        _run = vcpu.Run;
        _memory = memory;
        _portals = new Portal[EventCount];
        _exits = new long[EventCount];
        _syncRegs = vcpu.Vm.CheckExtension(KvmCapability.SyncRegs) is var mask && (mask & 7) == 7;
        _state = new VcpuState(this, vcpu, _syncRegs);
    }

    /// <summary>The vCPU's identity for recall and release: the seed's <c>sel_sm_ec()</c>.</summary>
    public VcpuId Id => new(_vcpu.Id);

    /// <summary>The vCPU this dispatcher runs.</summary>
    public KvmVcpu Vcpu => _vcpu;

    /// <summary>Completes with the run's result when the vCPU stops.</summary>
    public Task<VcpuRunResult> Completion => _completion.Task;

    /// <summary>Whether the dispatcher has been started (its handlers are then fixed).</summary>
    public bool IsStarted => Volatile.Read(ref _started) != 0;

    /// <summary>Whether KVM's sync-regs area carries register state (else every transfer is an ioctl).</summary>
    public bool UsesSyncRegs => _syncRegs;

    /// <summary>How many times <paramref name="ev"/> was delivered to its handler.</summary>
    public long ExitCount(VcpuEvent ev) => Volatile.Read(ref _exits[(int)ev]);

    /// <summary>How many events were delivered in all.</summary>
    public long TotalExits => _exits.Sum();

    /// <summary>State ioctls (KVM_GET_*/KVM_SET_*) made for this vCPU so far.</summary>
    public long StateTransfers => _vcpu.StateTransfers;

    /// <summary>State groups written back through the sync-regs area (without an ioctl) so far.</summary>
    public long SyncWritebacks => _state.SyncWritebacks;

    /// <summary>
    /// Registers <paramref name="handler"/> for <paramref name="ev"/>, seeing the state groups <paramref name="mtd"/> names.
    /// Returns false, and registers nothing, where this host cannot deliver the event or transfer a named group,
    /// where the event already has a handler, or once the vCPU has started.
    /// </summary>
    public bool Register(VcpuEvent ev, Mtd mtd, VcpuHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        ObjectDisposedException.ThrowIf(_vcpu.IsDisposed, this);
        lock (_registrationLock)
        {
            if ((uint)ev >= (uint)EventCount || Volatile.Read(ref _started) != 0 || _portals[(int)ev].Handler is not null)
            {
                return false;
            }
            if (!CanDeliver(ev) || !CanTransfer(mtd))
            {
                return false;
            }
            _portals[(int)ev] = new Portal(handler, mtd);
            return true;
        }
    }

    /// <summary>
    /// Starts the dispatcher on a thread of its own with <paramref name="stackSize"/> bytes of stack
    /// (the seed's first constructor). Returns <see cref="Completion"/>.
    /// </summary>
    public Task<VcpuRunResult> Start(int stackSize = DefaultStackSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(stackSize, 64 * 1024);
        KvmRun* run = _vcpu.AcquireRun(); // held by the loop until it ends
        try
        {
            MarkStarted(run);
            var thread = new Thread(() => RunLoop(), stackSize)
            {
                IsBackground = true,
                Name = $"vCPU {_vcpu.Id} dispatcher",
            };
            thread.Start();
        }
        catch
        {
            _vcpu.ReleaseRun();
            throw;
        }
        return Completion;
    }

    /// <summary>
    /// Runs the dispatcher on the calling thread until the vCPU stops (the seed's pthread-style
    /// constructor: the caller brings the thread). Returns the run's result.
    /// </summary>
    public VcpuRunResult Run()
    {
        KvmRun* run = _vcpu.AcquireRun();
        try
        {
            MarkStarted(run);
        }
        catch
        {
            _vcpu.ReleaseRun();
            throw;
        }
        return RunLoop();
    }

    /// <summary>
    /// Kicks the vCPU out of the guest; its Recall handler then runs on the vCPU's own thread.
    /// Callable from any thread; a recall is never lost, not even one that lands just before KVM_RUN.
    /// A blocked vCPU is woken for it.
    /// </summary>
    public void Recall()
    {
        Volatile.Write(ref _recallPending, 1);
        Interlocked.MemoryBarrier();
        // Covers the window just before KVM_RUN; does nothing once the vCPU is disposed (its loop, if any, is then
        // ending: the signal and the pulse below still wake it).
        _ = _vcpu.RequestImmediateExit();
        lock (_kickLock)
        {
            if (_threadAlive)
            {
                _ = Libc.PthreadKill(_thread, KickSignal.Number); // interrupts a running KVM_RUN
            }
        }
        lock (_blockLock)
        {
            Monitor.PulseAll(_blockLock);
        }
    }

    /// <summary>Lets a vCPU that blocked itself (<see cref="VcpuState.Block"/>) run on; a release before the block is kept.</summary>
    public void Release()
    {
        lock (_blockLock)
        {
            _releases++;
            Monitor.PulseAll(_blockLock);
        }
    }

    /// <summary>
    /// Recalls the vCPU and keeps it parked outside <c>KVM_RUN</c> until <see cref="Resume"/>: the seed's recall whose
    /// handler blocks. The vCPU parks only after a <c>KVM_RUN</c> that returned because of the recall, so KVM has completed
    /// the pending I/O, MMIO or MSR access of the last exit (as <c>api.rst</c> requires before state is read) and the
    /// state read from another thread meanwhile is consistent. A Recall handler, if registered, runs first.
    /// Any thread; <see cref="WaitUntilPaused"/> tells when the vCPU is parked.
    /// </summary>
    public void Pause()
    {
        lock (_blockLock)
        {
            _pauseRequested = true;
        }
        Recall();
    }

    /// <summary>Lets a vCPU parked by <see cref="Pause"/> run on (the release); a pause not yet reached is withdrawn. Any thread.</summary>
    public void Resume()
    {
        lock (_blockLock)
        {
            // A pause withdrawn before the vCPU parked leaves its recall behind: the loop must not take it for a user's.
            _withdrawnPause |= _pauseRequested && !_parked;
            _pauseRequested = false;
            _resumes++;
            Monitor.PulseAll(_blockLock);
        }
    }

    /// <summary>
    /// Waits until the vCPU is parked after <see cref="Pause"/>, its run has ended, or <paramref name="timeout"/> passes.
    /// True if it is parked or not running (never started, or ended); false on timeout. Any thread.
    /// </summary>
    public bool WaitUntilPaused(TimeSpan timeout)
    {
        long end = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        lock (_blockLock)
        {
            // Parked since the last resume: a vCPU still leaving an earlier park does not count.
            while (!(_parked && _parkedAt == _resumes) && IsStarted && !_completion.Task.IsCompleted)
            {
                long left = end - Environment.TickCount64;
                if (left <= 0)
                {
                    return false;
                }
                Monitor.Wait(_blockLock, (int)Math.Min(left, int.MaxValue));
            }
            return true;
        }
    }

    /// <summary>Whether the vCPU is parked by <see cref="Pause"/> now.</summary>
    public bool IsPaused
    {
        get
        {
            lock (_blockLock)
            {
                return _parked;
            }
        }
    }

    /// <summary>Stops the vCPU from outside; its run ends with <see cref="VcpuRunOutcome.Cancelled"/>.</summary>
    public void RequestStop()
    {
        _stopRequested = true;
        Recall();
    }

    private void MarkStarted(KvmRun* run)
    {
        lock (_registrationLock)
        {
            if (Interlocked.Exchange(ref _started, 1) != 0)
            {
                throw new InvalidOperationException($"vCPU {_vcpu.Id} has already been started");
            }
            ulong valid = 0;
            for (int i = 0; i < _portals.Length; i++)
            {
                if (_portals[i].Handler is not null && i != (int)VcpuEvent.Startup)
                {
                    valid |= SyncParts(_portals[i].Mtd);
                }
            }
            run->ValidRegs = _syncRegs ? valid : 0;
        }
    }

    private VcpuRunResult RunLoop()
    {
        VcpuRunResult result;
        Libc.SigSet oldMask = KickSignal.BlockInThisThread();
        try
        {
            _vcpu.SetSignalMask(oldMask.Low & ~KickSignal.Bit);
            lock (_kickLock)
            {
                _thread = Libc.PthreadSelf();
                _threadAlive = true;
            }
            result = Loop();
        }
        catch (ObjectDisposedException e) when (_vcpu.IsDisposed)
        {
            result = Failure($"vCPU {_vcpu.Id} was disposed while it ran", e);
        }
        catch (Exception e)
        {
            result = Failure(e is VmmException ? e.Message : $"the {_state.Event} handler threw {e.GetType().Name}: {e.Message}", e);
        }
        finally
        {
            lock (_kickLock)
            {
                _threadAlive = false;
            }
            KickSignal.Drain();
            KickSignal.Restore(oldMask);
            _vcpu.ReleaseRun();
        }
        _completion.TrySetResult(result);
        lock (_blockLock)
        {
            Monitor.PulseAll(_blockLock); // wakes WaitUntilPaused: an ended vCPU is not running
        }
        return result;
    }

    private VcpuRunResult Loop()
    {
        _state.Invalidate();
        if (_portals[(int)VcpuEvent.Startup].Handler is not null && Deliver(VcpuEvent.Startup) is { } startupResult)
        {
            return startupResult;
        }
        while (true)
        {
            if (_stopRequested)
            {
                return Cancelled(); // asked while a handler ran or the vCPU was blocked: do not enter the guest again
            }
            bool halted = false;
            int errno = _vcpu.EnterGuest();
            _state.OnExit();
            VcpuEvent ev;
            if (errno != 0)
            {
                if (errno is not (Libc.EINTR or Libc.EAGAIN))
                {
                    throw new KvmException(KvmIoctl.Run, errno, $"vcpu {_vcpu.Id}");
                }
                if (!Interrupted())
                {
                    continue;
                }
                ev = VcpuEvent.Recall;
            }
            else
            {
                switch (_run->ExitReason)
                {
                    case KvmExitReason.Io: ev = VcpuEvent.Io; break;
                    case KvmExitReason.Mmio: ev = VcpuEvent.Mmio; break;
                    case KvmExitReason.Hlt:
                        // A guest doing "sti; hlt" reaches the HLT exit before the window exit: the window is open.
                        if (_run->RequestInterruptWindow != 0 && _run->ReadyForInterruptInjection != 0)
                        {
                            _run->RequestInterruptWindow = 0;
                            ev = VcpuEvent.IrqWindow;
                            halted = true;
                        }
                        else
                        {
                            ev = VcpuEvent.Hlt;
                        }
                        break;
                    case KvmExitReason.IrqWindowOpen:
                        _run->RequestInterruptWindow = 0;
                        ev = VcpuEvent.IrqWindow;
                        break;
                    case KvmExitReason.Shutdown: ev = VcpuEvent.Shutdown; break;
                    case KvmExitReason.FailEntry: ev = VcpuEvent.EntryFailure; break;
                    case KvmExitReason.InternalError: ev = VcpuEvent.InternalError; break;
                    case KvmExitReason.Debug: ev = VcpuEvent.Debug; break;
                    case KvmExitReason.X86Rdmsr:
                    case KvmExitReason.X86Wrmsr:
                        ev = _run->ExitReason == KvmExitReason.X86Rdmsr ? VcpuEvent.MsrRead : VcpuEvent.MsrWrite;
                        if (_portals[(int)ev].Handler is null)
                        {
                            AnswerMsrAsKvm(ev == VcpuEvent.MsrWrite);
                            continue;
                        }
                        break;
                    case KvmExitReason.SystemEvent: ev = VcpuEvent.SystemEvent; break;
                    case KvmExitReason.Intr:
                        if (!Interrupted())
                        {
                            continue;
                        }
                        ev = VcpuEvent.Recall;
                        break;
                    default:
                        return Failure($"vCPU {_vcpu.Id}: KVM exit reason {_run->ExitReason} is not one VmmSharp knows; {FaultReport.Describe(_vcpu, _memory)}", null);
                }
            }
            if (_stopRequested)
            {
                return Cancelled();
            }
            if (ev == VcpuEvent.Recall && !_pauseRequested && _portals[(int)VcpuEvent.Recall].Handler is null && TakeWithdrawnPause())
            {
                continue;
            }
            if (ev == VcpuEvent.Recall && _pauseRequested)
            {
                if (_portals[(int)VcpuEvent.Recall].Handler is not null && Deliver(ev) is { } recallResult)
                {
                    return recallResult;
                }
                Park();
                continue;
            }
            if (Deliver(ev) is { } result)
            {
                return result;
            }
            // The guest halted with the window open; if the window's handler gave it nothing to wake for, it is a HLT still.
            if (halted && !_state.Injected && Deliver(VcpuEvent.Hlt) is { } haltResult)
            {
                return haltResult;
            }
        }
    }

    /// <summary>
    /// An MSR exit on a vCPU without a handler for it (user-space MSR exits are VM-wide): what KVM alone would have done.
    /// </summary>
    private void AnswerMsrAsKvm(bool write)
    {
        const uint filterReason = 4; // KVM_MSR_EXIT_REASON_FILTER: KVM knows the MSR; only the filter sent it here
        bool ok = false;
        if (_run->MsrReason == filterReason)
        {
            uint index = _run->MsrIndex;
            if (write)
            {
                ok = _vcpu.TrySetMsr(index, _run->MsrData);
            }
            else if (_vcpu.TryGetMsr(index, out ulong value))
            {
                _run->MsrData = value;
                ok = true;
            }
        }
        _run->MsrError = ok ? (byte)0 : (byte)1; // 1: KVM injects #GP
    }

    /// <summary>
    /// Lets KVM complete the instruction of the exit being handled (<c>KVM_RUN</c> with <c>immediate_exit</c>),
    /// keeping any recall that is pending. Called by <see cref="VcpuState.CompleteInstruction"/>.
    /// </summary>
    internal void CompleteInstruction()
    {
        Volatile.Write(ref _run->ImmediateExit, 1);
        int errno = _vcpu.EnterGuest();
        _run->ImmediateExit = 0;
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _recallPending) != 0 || _stopRequested)
        {
            _run->ImmediateExit = 1; // a recall that came meanwhile is still delivered
        }
        if (errno is not (Libc.EINTR or Libc.EAGAIN))
        {
            throw new VmmException(errno == 0
                ? $"vCPU {_vcpu.Id}: KVM needed another exit (reason {_run->ExitReason}) to complete the instruction"
                : $"vCPU {_vcpu.Id}: completing the instruction failed: {Libc.ErrorText(errno)} (errno {errno})");
        }
    }

    private bool TakeWithdrawnPause()
    {
        lock (_blockLock)
        {
            bool withdrawn = _withdrawnPause;
            _withdrawnPause = false;
            return withdrawn;
        }
    }

    /// <summary>Parks the vCPU, outside KVM_RUN with its last access completed, until <see cref="Resume"/> or a stop.</summary>
    private void Park()
    {
        lock (_blockLock)
        {
            _parked = true;
            _parkedAt = _resumes;
            Monitor.PulseAll(_blockLock);
            while (_parkedAt == _resumes && !_stopRequested)
            {
                Monitor.Wait(_blockLock);
            }
            _parked = false;
        }
    }

    private VcpuRunResult Cancelled() => new(VcpuRunOutcome.Cancelled, 0, $"vCPU {_vcpu.Id} was stopped on request");

    /// <summary>After KVM_RUN was interrupted: consumes the kick; true if a recall is to be delivered.</summary>
    private bool Interrupted()
    {
        // Clear immediate_exit before taking the flag: a recall landing after the exchange sets it again.
        _run->ImmediateExit = 0;
        Interlocked.MemoryBarrier();
        bool recalled = Interlocked.Exchange(ref _recallPending, 0) != 0;
        KickSignal.Drain();
        return recalled || _stopRequested;
    }

    /// <summary>Calls the event's portal and replies; returns the run's result if the vCPU is to stop.</summary>
    private VcpuRunResult? Deliver(VcpuEvent ev)
    {
        ref Portal portal = ref _portals[(int)ev];
        if (portal.Handler is null)
        {
            return Unhandled(ev);
        }
        _exits[(int)ev]++;
        _state.Begin(ev, portal.Mtd);
        portal.Handler(_state);
        _state.Reply();
        if (_state.StopResult is { } stop)
        {
            return stop;
        }
        if (_state.BlockRequested)
        {
            _state.BlockRequested = false;
            lock (_blockLock)
            {
                while (_releases == 0 && Volatile.Read(ref _recallPending) == 0 && !_stopRequested)
                {
                    Monitor.Wait(_blockLock);
                }
                if (_releases > 0)
                {
                    _releases--;
                }
            }
        }
        return null;
    }

    private VcpuRunResult Unhandled(VcpuEvent ev)
    {
        string detail = ev switch
        {
            VcpuEvent.Io => $" (port 0x{_run->IoPort:x}, {_run->IoSize}-byte {(_run->IoDirection == 1 ? "write" : "read")})",
            VcpuEvent.Mmio => $" (address 0x{_run->MmioPhysAddr:x}, {_run->MmioLen}-byte {(_run->MmioIsWrite != 0 ? "write" : "read")})",
            VcpuEvent.MsrRead or VcpuEvent.MsrWrite => $" (MSR 0x{_run->MsrIndex:x})",
            VcpuEvent.InternalError => $" (suberror {_run->InternalSuberror})",
            VcpuEvent.EntryFailure => $" (hardware reason 0x{_run->FailEntryReason:x})",
            VcpuEvent.SystemEvent => $" (type {_run->SystemEventType})",
            _ => "",
        };
        ReadOnlySpan<byte> insn = ev == VcpuEvent.InternalError ? new InternalErrorExit(_run).InstructionBytes : default;
        string where = FaultReport.Describe(_vcpu, _memory, insn, afterPortIo: ev == VcpuEvent.Io);
        return Failure($"vCPU {_vcpu.Id}: unhandled {ev} event{detail} at {where}", null);
    }

    private static VcpuRunResult Failure(string message, Exception? inner)
    {
        var error = inner as VmmException ?? (inner is null ? new VmmException(message) : new VmmException(message, inner));
        return new VcpuRunResult(VcpuRunOutcome.Failed, -1, message, error);
    }

    private bool CanDeliver(VcpuEvent ev) => ev switch
    {
        // With the in-kernel irqchip, KVM handles HLT and interrupt windows itself.
        VcpuEvent.Hlt or VcpuEvent.IrqWindow => !_vcpu.Vm.HasIrqchip,
        VcpuEvent.MsrRead or VcpuEvent.MsrWrite => _vcpu.Vm.EnableUserSpaceMsrExits(),
        VcpuEvent.Debug => _vcpu.Vm.CheckExtension(KvmCapability.SetGuestDebug) > 0,
        VcpuEvent.Recall => _vcpu.Vm.System.Has(KvmCapability.ImmediateExit),
        _ => true,
    };

    private bool CanTransfer(Mtd mtd)
    {
        if ((mtd & Mtd.Dr) != 0 && _vcpu.Vm.CheckExtension(KvmCapability.DebugRegs) <= 0)
        {
            return false;
        }
        return (mtd & VcpuState.EventsGroups) == 0 || _vcpu.Vm.CheckExtension(KvmCapability.VcpuEvents) > 0;
    }

    private static ulong SyncParts(Mtd mtd)
    {
        ulong parts = 0;
        if ((mtd & VcpuState.RegsGroups) != 0)
        {
            parts |= KvmRun.SyncX86Regs;
        }
        if ((mtd & VcpuState.SregsGroups) != 0)
        {
            parts |= KvmRun.SyncX86Sregs;
        }
        if ((mtd & VcpuState.EventsGroups) != 0)
        {
            parts |= KvmRun.SyncX86Events;
        }
        return parts;
    }

    private readonly record struct Portal(VcpuHandler? Handler, Mtd Mtd);
}
