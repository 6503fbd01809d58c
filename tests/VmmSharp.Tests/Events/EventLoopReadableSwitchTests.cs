using VmmSharp.Events;
using VmmSharp.Interop;

namespace VmmSharp.Tests.Events;

/// <summary>The switch <see cref="EventLoop.AddReadable"/> returns: off, data wakes nobody; on, waiting data calls at once.</summary>
public sealed class EventLoopReadableSwitchTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public void A_watch_switched_off_is_not_called_and_switched_on_is_called_for_what_waited()
    {
        using var loop = new EventLoop("test-switch");
        using var fd = new EventFd();
        using var ran = new AutoResetEvent(false);
        int calls = 0;
        Action<bool> watch = loop.AddReadable(fd, () =>
        {
            Interlocked.Increment(ref calls);
            ran.Set();
        });
        loop.Start();
        fd.Signal();
        Assert.True(ran.WaitOne(Wait), "the watch was not called while on");

        watch(false);
        fd.Signal();
        Assert.False(ran.WaitOne(TimeSpan.FromMilliseconds(300)), "the watch was called while off");
        Assert.Equal(1, Volatile.Read(ref calls));

        watch(true);
        Assert.True(ran.WaitOne(Wait), "switching on did not call the watch for the signal that came while off");
        Assert.Equal(2, Volatile.Read(ref calls));
    }
}
