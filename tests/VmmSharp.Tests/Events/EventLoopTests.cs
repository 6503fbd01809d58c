using VmmSharp.Events;
using VmmSharp.Interop;

namespace VmmSharp.Tests.Events;

/// <summary>The epoll event loop: subscribers run on its thread, it survives a failing one, and stops on time.</summary>
public sealed class EventLoopTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public void A_signalled_eventfd_runs_its_subscriber_on_the_loops_thread()
    {
        using var loop = new EventLoop("test-events");
        using var fd = new EventFd();
        using var ran = new ManualResetEventSlim();
        string? thread = null;
        loop.Add(fd, () =>
        {
            thread = Thread.CurrentThread.Name;
            ran.Set();
        });
        loop.Start();

        fd.Signal();

        Assert.True(ran.Wait(Wait));
        Assert.Equal("test-events", thread);
    }

    [Fact]
    public void The_loop_consumes_the_counter_before_calling_the_subscriber()
    {
        using var loop = new EventLoop();
        using var fd = new EventFd();
        using var ran = new ManualResetEventSlim();
        ulong left = ulong.MaxValue;
        loop.Add(fd, () =>
        {
            left = fd.Consume();
            ran.Set();
        });
        loop.Start();
        fd.Signal();
        Assert.True(ran.Wait(Wait));
        Assert.Equal(0UL, left);
    }

    [Fact]
    public void A_subscriber_that_throws_does_not_stop_the_others()
    {
        using var loop = new EventLoop();
        using var bad = new EventFd();
        using var good = new EventFd();
        using var ran = new ManualResetEventSlim();
        loop.Add(bad, () => throw new InvalidOperationException("device bug"));
        loop.Add(good, ran.Set);
        loop.Start();

        bad.Signal();
        Thread.Sleep(50);
        good.Signal();

        Assert.True(ran.Wait(Wait));
        Assert.True(loop.IsRunning);
    }

    [Fact]
    public void A_subscriber_added_while_running_is_served()
    {
        using var loop = new EventLoop();
        loop.Start();
        using var fd = new EventFd();
        using var ran = new ManualResetEventSlim();
        loop.Add(fd, ran.Set);
        fd.Signal();
        Assert.True(ran.Wait(Wait));
    }

    [Fact]
    public void Stop_ends_the_thread_within_the_deadline()
    {
        using var loop = new EventLoop();
        loop.Start();
        Assert.True(loop.Stop(TimeSpan.FromSeconds(5)));
        Assert.False(loop.IsRunning);
    }
}
