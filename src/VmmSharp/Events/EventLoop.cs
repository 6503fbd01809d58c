using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using VmmSharp.Interop;

namespace VmmSharp.Events;

/// <summary>
/// An epoll loop on a thread of its own: it waits on eventfds and calls each one's subscriber when it becomes
/// readable, so device work (virtio queue notifications) runs off the vCPU threads.
/// </summary>
/// <remarks>
/// <para>Threading: <see cref="Add"/> and <see cref="AddReadable"/> may be called from any thread, before or after <see cref="Start"/>; subscribers
/// run one at a time on the loop's thread, so a subscriber never races another subscriber of the same loop. The
/// loop consumes the eventfd's counter before calling its subscriber (signals that arrive while the subscriber runs
/// call it once more). A subscriber that throws is logged and stays subscribed; the loop keeps serving the others.</para>
/// <para>A pause (<see cref="Pause"/>) parks the thread between batches of events, so no subscriber runs while a VM is
/// paused or snapshotted; <see cref="Resume"/> lets it go on with what arrived meanwhile.</para>
/// <para>The wait itself allocates nothing; an event costs one <c>epoll_wait</c> and one <c>read</c>.</para>
/// </remarks>
public sealed unsafe partial class EventLoop : IDisposable
{
    private const int MaxEventsPerWait = 16;
    private const ulong StopToken = ulong.MaxValue;
    private const ulong WakeToken = ulong.MaxValue - 1;

    private readonly SafeFileDescriptor _epoll;
    private readonly EventFd _stop = new();
    private readonly EventFd _wake = new();
    private readonly object _pauseLock = new(); // a monitor: the parked loop waits on it
    private readonly ILogger? _logger;
    private readonly Lock _lock = new();
    private Subscription[] _subscriptions = [];
    private Thread? _thread;
    private volatile bool _stopping;
    private volatile bool _pauseRequested;
    private bool _parked;
    private bool _disposed;

    /// <summary>Creates the loop (not yet running).</summary>
    /// <param name="name">The thread's name, for debuggers and <c>top -H</c>.</param>
    /// <param name="logger">Receives subscriber failures; null for none.</param>
    public EventLoop(string name = "vmm-events", ILogger? logger = null)
    {
        Name = name;
        _logger = logger;
        int fd = Libc.EpollCreate1(Libc.EPOLL_CLOEXEC);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            _stop.Dispose();
            _wake.Dispose();
            throw new VmmException($"epoll_create1: {Libc.ErrorText(errno)}");
        }
        _epoll = new SafeFileDescriptor(fd);
        Watch(_stop, StopToken);
        Watch(_wake, WakeToken);
    }

    /// <summary>The loop thread's name.</summary>
    public string Name { get; }

    /// <summary>Whether the loop's thread is running.</summary>
    public bool IsRunning => _thread is { IsAlive: true };

    /// <summary>Whether the loop is paused (<see cref="Pause"/>): it calls no subscriber until <see cref="Resume"/>.</summary>
    public bool IsPaused => _pauseRequested;

    /// <summary>
    /// Calls <paramref name="onReadable"/> on the loop's thread each time <paramref name="eventFd"/> is signalled.
    /// The loop holds a reference to the eventfd until it is disposed.
    /// </summary>
    public void Add(EventFd eventFd, Action onReadable) => Subscribe(eventFd, onReadable, edgeTriggered: false);

    /// <summary>
    /// Calls <paramref name="onReadable"/> on the loop's thread when <paramref name="descriptor"/> (a socket, a TAP)
    /// becomes readable: edge-triggered, so the subscriber reads until the descriptor would block, or until it has
    /// nowhere to put the data and comes back later by itself (a new edge comes with the next data).
    /// </summary>
    public void AddReadable(SafeHandle descriptor, Action onReadable) => Subscribe(descriptor, onReadable, edgeTriggered: true);

    private void Subscribe(SafeHandle eventFd, Action onReadable, bool edgeTriggered)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        ArgumentNullException.ThrowIfNull(onReadable);
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_lock)
        {
            bool added = false;
            eventFd.DangerousAddRef(ref added);
            var subscriptions = new Subscription[_subscriptions.Length + 1];
            _subscriptions.CopyTo(subscriptions, 0);
            subscriptions[^1] = new Subscription(eventFd, onReadable);
            try
            {
                Watch(eventFd, (ulong)(subscriptions.Length - 1), edgeTriggered);
            }
            catch
            {
                eventFd.DangerousRelease();
                throw;
            }
            // Published after epoll knows it: the loop only looks up tokens it has been given.
            Volatile.Write(ref _subscriptions, subscriptions);
        }
    }

    /// <summary>Starts the loop's thread.</summary>
    /// <exception cref="InvalidOperationException">The loop was already started.</exception>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_lock)
        {
            if (_thread is not null)
            {
                throw new InvalidOperationException($"event loop '{Name}' was already started");
            }
            _thread = new Thread(Loop, maxStackSize: 256 * 1024) { Name = Name, IsBackground = true };
            _thread.Start();
        }
    }

    /// <summary>
    /// Holds the loop: the subscriber running now (and the rest of its batch of events) finishes, then no subscriber
    /// runs until <see cref="Resume"/>. Events that arrive meanwhile wait in the kernel (an eventfd keeps its count,
    /// epoll keeps an edge) and are served after the resume. Returns whether the loop's thread is parked within
    /// <paramref name="deadline"/> (a loop not started, or stopped, counts as parked; a loop started while paused parks at once).
    /// </summary>
    /// <exception cref="InvalidOperationException">Called from a subscriber, on the loop's own thread.</exception>
    public bool Pause(TimeSpan deadline)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Thread.CurrentThread == _thread)
        {
            throw new InvalidOperationException($"event loop '{Name}' cannot be paused from one of its own subscribers");
        }
        lock (_pauseLock)
        {
            _pauseRequested = true;
            _wake.Signal();
            long end = Environment.TickCount64 + (long)Math.Min(deadline.TotalMilliseconds, int.MaxValue);
            while (!_parked && _thread is { IsAlive: true } && !_stopping)
            {
                long left = end - Environment.TickCount64;
                if (deadline != Timeout.InfiniteTimeSpan && left <= 0)
                {
                    return false;
                }
                // Woken by the loop as it parks; the bounded wait also notices a thread that ended.
                Monitor.Wait(_pauseLock, deadline == Timeout.InfiniteTimeSpan ? 100 : (int)Math.Clamp(left, 1, 100));
            }
            return true;
        }
    }

    /// <summary>Lets a paused loop call its subscribers again; does nothing to a running loop.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage(
        "Naming", "CA1716:Identifiers should not match keywords", Justification = "Pause and resume are the lifecycle's terms; VB is not a target.")]
    public void Resume()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_pauseLock)
        {
            _pauseRequested = false;
            Monitor.PulseAll(_pauseLock);
        }
    }

    /// <summary>
    /// Asks the loop to stop and waits up to <paramref name="deadline"/> for its thread to end (a subscriber still
    /// running delays it). Returns whether the thread ended; a loop never started counts as stopped.
    /// </summary>
    public bool Stop(TimeSpan deadline)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _stopping = true;
        _stop.Signal();
        lock (_pauseLock)
        {
            Monitor.PulseAll(_pauseLock); // a parked loop wakes to stop
        }
        return _thread is not { } t || t.Join(deadline);
    }

    /// <summary>Stops the loop (waiting up to a second) and releases its descriptors.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        bool stopped = Stop(TimeSpan.FromSeconds(1));
        _disposed = true;
        if (!stopped)
        {
            // The thread still uses the descriptors; leave them to the finalizers rather than pull them away.
            return;
        }
        foreach (Subscription s in _subscriptions)
        {
            s.EventFd.DangerousRelease();
        }
        _epoll.Dispose();
        _stop.Dispose();
        _wake.Dispose();
    }

    private void Watch(SafeHandle eventFd, ulong token, bool edgeTriggered = false)
    {
        var ev = new Libc.EpollEvent { Events = Libc.EPOLLIN | (edgeTriggered ? Libc.EPOLLET : 0), Data = token };
        if (Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_ADD, eventFd, &ev) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new VmmException($"epoll_ctl(ADD) on event loop '{Name}': {Libc.ErrorText(errno)}");
        }
    }

    private void Loop()
    {
        Libc.EpollEvent* events = stackalloc Libc.EpollEvent[MaxEventsPerWait];
        while (!_stopping)
        {
            if (_pauseRequested)
            {
                Park();
                continue;
            }
            int n = Libc.EpollWait(_epoll, events, MaxEventsPerWait, -1);
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EINTR)
                {
                    continue;
                }
                if (_logger is not null)
                {
                    LogWaitFailed(_logger, Name, Libc.ErrorText(errno));
                }
                return;
            }
            Subscription[] subscriptions = Volatile.Read(ref _subscriptions);
            for (int i = 0; i < n && !_stopping; i++)
            {
                ulong token = events[i].Data;
                if (token == WakeToken)
                {
                    _wake.Consume(); // a pause asked the loop to look at its flag
                    continue;
                }
                if (token >= (ulong)subscriptions.Length)
                {
                    continue; // the stop eventfd
                }
                Subscription s = subscriptions[(int)token];
                if (s.EventFd is EventFd counter)
                {
                    counter.Consume();
                }
                try
                {
                    s.OnReadable();
                }
#pragma warning disable CA1031 // A failing device must not take the others down with it.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    if (_logger is not null)
                    {
                        LogSubscriberFailed(_logger, Name, e);
                    }
                }
            }
        }
    }

    /// <summary>Waits, calling no subscriber, until the pause ends or the loop stops.</summary>
    private void Park()
    {
        lock (_pauseLock)
        {
            _parked = true;
            Monitor.PulseAll(_pauseLock);
            while (_pauseRequested && !_stopping)
            {
                Monitor.Wait(_pauseLock);
            }
            _parked = false;
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "event loop '{Name}': a subscriber failed")]
    private static partial void LogSubscriberFailed(ILogger logger, string name, Exception error);

    [LoggerMessage(Level = LogLevel.Error, Message = "event loop '{Name}': epoll_wait failed: {Error}; the loop ends")]
    private static partial void LogWaitFailed(ILogger logger, string name, string error);

    private sealed record Subscription(SafeHandle EventFd, Action OnReadable);
}
