using VmmSharp.Interop;

namespace VmmSharp.Dispatch;

/// <summary>
/// The real-time signal that kicks a vCPU thread out of <c>KVM_RUN</c>. It stays blocked in the thread,
/// so no handler ever runs (managed code in a signal handler is unsafe), but <c>KVM_SET_SIGNAL_MASK</c>
/// unblocks it while the guest runs, so it interrupts <c>KVM_RUN</c>; it is then consumed with
/// <c>sigtimedwait</c>. The .NET runtime itself uses SIGRTMIN, so this is SIGRTMIN + 6.
/// </summary>
internal static unsafe class KickSignal
{
    public static readonly int Number = Libc.SigRtMin() + 6;

    /// <summary>Blocks the signal in the calling thread; returns the thread's previous mask.</summary>
    public static Libc.SigSet BlockInThisThread()
    {
        Libc.SigSet set = default;
        set.Add(Number);
        Libc.SigSet old;
        int rc = Libc.PthreadSigmask(Libc.SIG_BLOCK, &set, &old);
        if (rc != 0)
        {
            throw new VmmException($"pthread_sigmask(SIG_BLOCK, signal {Number}) failed: {Libc.ErrorText(rc)}");
        }
        return old;
    }

    /// <summary>Consumes a pending kick, if any, without blocking.</summary>
    public static void Drain()
    {
        Libc.SigSet set = default;
        set.Add(Number);
        Libc.Timespec zero = default;
        while (Libc.SigTimedWait(&set, null, &zero) == Number)
        {
        }
    }

    /// <summary>Restores a mask saved by <see cref="BlockInThisThread"/>.</summary>
    public static void Restore(Libc.SigSet old) => _ = Libc.PthreadSigmask(Libc.SIG_SETMASK, &old, null);

    /// <summary>The signal's bit in a kernel signal mask.</summary>
    public static ulong Bit => 1UL << (Number - 1);
}
