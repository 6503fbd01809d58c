using VmmSharp.Events;
using VmmSharp.Interop;

namespace VmmSharp.Tests.Events;

/// <summary>Pausing the event loop: no subscriber runs while paused, what arrived meanwhile is served after the resume.</summary>
public sealed class EventLoopPauseTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public void A_paused_loop_calls_no_subscriber_and_serves_the_signal_after_resume()
    {
        using var loop = new EventLoop("test-pause");
        using var fd = new EventFd();
        int runs = 0;
        loop.Add(fd, () => Interlocked.Increment(ref runs));
        loop.Start();
        Assert.True(loop.Pause(Wait));

        fd.Signal();
        Thread.Sleep(200);
        Assert.Equal(0, Volatile.Read(ref runs));

        loop.Resume();
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref runs) == 1, Wait));
    }

    [Fact]
    public void Pause_returns_only_after_the_running_subscriber_finished()
    {
        using var loop = new EventLoop();
        using var fd = new EventFd();
        using var entered = new ManualResetEventSlim();
        bool finished = false;
        loop.Add(fd, () =>
        {
            entered.Set();
            Thread.Sleep(300);
            Volatile.Write(ref finished, true);
        });
        loop.Start();
        fd.Signal();
        Assert.True(entered.Wait(Wait));

        Assert.True(loop.Pause(Wait));

        Assert.True(Volatile.Read(ref finished));
        loop.Resume();
    }

    [Fact]
    public void A_loop_started_while_paused_parks_at_once()
    {
        using var loop = new EventLoop();
        using var fd = new EventFd();
        int runs = 0;
        loop.Add(fd, () => Interlocked.Increment(ref runs));
        Assert.True(loop.Pause(Wait));
        fd.Signal();
        loop.Start();
        Thread.Sleep(200);
        Assert.Equal(0, Volatile.Read(ref runs));
        loop.Resume();
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref runs) == 1, Wait));
    }

    [Fact]
    public void A_paused_loop_stops_on_time()
    {
        using var loop = new EventLoop();
        loop.Start();
        Assert.True(loop.Pause(Wait));
        Assert.True(loop.Stop(Wait));
    }

    [Fact]
    public void A_subscriber_cannot_pause_its_own_loop()
    {
        using var loop = new EventLoop();
        using var fd = new EventFd();
        Exception? error = null;
        using var ran = new ManualResetEventSlim();
        loop.Add(fd, () =>
        {
            error = Record.Exception(() => loop.Pause(Wait));
            ran.Set();
        });
        loop.Start();
        fd.Signal();
        Assert.True(ran.Wait(Wait));
        Assert.IsType<InvalidOperationException>(error);
    }
}
