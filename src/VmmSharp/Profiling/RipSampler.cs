using VmmSharp.Dispatch;

namespace VmmSharp.Profiling;

/// <summary>
/// A sampling profiler of guest code: a host thread recalls every vCPU each <see cref="Interval"/>, and the vCPU's Recall
/// handler records where the guest was (RIP, through sync-regs: no state ioctl). Unbiased by exits, unlike sampling RIP at
/// them; idle time shows as the guest's halt loop. Costs nothing unless attached: no thread, no handler.
/// </summary>
/// <remarks>
/// Each recall is one exit (25–55 µs on a PVM host), so an interval of 1 ms slows the guest by a few per cent. The samples
/// go into a buffer per vCPU allocated when it is attached (<see cref="Capacity"/> samples each, then they are counted as
/// dropped): the exit path allocates nothing and the memory is bounded. Threading: <see cref="Attach"/> before the vCPUs
/// start; <see cref="Start"/>, <see cref="Stop"/> and <see cref="Profile"/> from the thread that owns the run, the last
/// once the vCPUs have stopped.
/// </remarks>
public sealed class RipSampler : IDisposable
{
    /// <summary>The default number of samples kept per vCPU: 2^20, over 17 minutes at 1 ms.</summary>
    public const int DefaultCapacity = 1 << 20;

    private readonly List<(VcpuDispatcher Vcpu, ulong[] Samples)> _vcpus = [];
    private readonly long[] _taken;
    private volatile bool _stopping;
    private Thread? _thread;
    private bool _disposed;

    /// <summary>Creates a sampler; nothing runs until <see cref="Start"/>.</summary>
    /// <param name="interval">Time between samples: 1 ms to 1 s.</param>
    /// <param name="capacity">Samples kept per vCPU: 1 to 2^24.</param>
    /// <param name="maxVcpus">How many vCPUs may be attached.</param>
    public RipSampler(TimeSpan interval, int capacity = DefaultCapacity, int maxVcpus = 256)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(interval, TimeSpan.FromMilliseconds(1));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(interval, TimeSpan.FromSeconds(1));
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, 1 << 24);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxVcpus, 1);
        Interval = interval;
        Capacity = capacity;
        _taken = new long[maxVcpus];
    }

    /// <summary>The time between samples.</summary>
    public TimeSpan Interval { get; }

    /// <summary>The samples kept per vCPU.</summary>
    public int Capacity { get; }

    /// <summary>Registers the vCPU's Recall handler (MTD <see cref="Mtd.Rip"/>); false if the slot is taken or the vCPU has started.</summary>
    public bool Attach(VcpuDispatcher vcpu)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        ObjectDisposedException.ThrowIf(_disposed, this);
        int index = _vcpus.Count;
        if (index == _taken.Length)
        {
            return false;
        }
        ulong[] samples = new ulong[Capacity];
        if (!vcpu.Register(VcpuEvent.Recall, Mtd.Rip, s => Record(index, samples, s.Rip)))
        {
            return false;
        }
        _vcpus.Add((vcpu, samples));
        return true;
    }

    /// <summary>Starts the thread that recalls the attached vCPUs.</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_thread is not null)
        {
            throw new InvalidOperationException("the sampler has already started");
        }
        _thread = new Thread(Tick) { IsBackground = true, Name = "vmm-profiler" };
        _thread.Start();
    }

    /// <summary>Stops the sampling thread (waits for it).</summary>
    public void Stop()
    {
        _stopping = true;
        _thread?.Join(); // at most one interval
    }

    /// <summary>What was sampled so far: the count per RIP over all vCPUs.</summary>
    public GuestProfile Profile()
    {
        var counts = new Dictionary<ulong, long>();
        long total = 0, dropped = 0;
        for (int i = 0; i < _vcpus.Count; i++)
        {
            long taken = Volatile.Read(ref _taken[i]);
            ulong[] samples = _vcpus[i].Samples;
            long kept = Math.Min(taken, samples.Length);
            for (long j = 0; j < kept; j++)
            {
                counts[samples[j]] = counts.GetValueOrDefault(samples[j]) + 1;
            }
            total += kept;
            dropped += taken - kept;
        }
        return new GuestProfile(counts, total, dropped, Interval);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Stop();
    }

    // On the vCPU's thread, in its Recall handler: no allocation.
    private void Record(int index, ulong[] samples, ulong rip)
    {
        long n = _taken[index];
        if (n < samples.Length)
        {
            samples[n] = rip;
        }
        Volatile.Write(ref _taken[index], n + 1);
    }

    // Thread.Sleep, not a timed wait on the stop event: under load here, ManualResetEventSlim.Wait(1 ms) let one tick through in 300 ms.
    private void Tick()
    {
        while (true)
        {
            Thread.Sleep(Interval);
            if (_stopping)
            {
                return;
            }
            foreach ((VcpuDispatcher vcpu, _) in _vcpus)
            {
                vcpu.Recall();
            }
        }
    }
}
