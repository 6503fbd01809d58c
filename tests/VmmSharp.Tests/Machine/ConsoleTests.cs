using System.Diagnostics;
using Iced.Intel;
using VmmSharp.Devices.Consoles;
using VmmSharp.Machine;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Machine;

/// <summary>COM1's host side: a console that stalls never holds a vCPU, and input never outlives its run.</summary>
public class ConsoleTests
{
    private const int Count = 1000;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>Writes to COM1's THR in a loop, never looking at LSR.</summary>
    internal static byte[] SpamKernel() => GuestImages.BzImageRunning(a =>
    {
        Label loop = a.CreateLabel();
        a.mov(dx, 0x3f8);
        a.mov(al, (byte)'x');
        a.Label(ref loop);
        a.@out(dx, al);
        a.jmp(loop);
    });

    /// <summary>Writes <see cref="Count"/> bytes (0, 1, 2, ... mod 256) as a polling driver does, waiting for THRE before each; then debug-exits 0.</summary>
    private static byte[] PollingWriterKernel() => GuestImages.BzImageRunning(a =>
    {
        Label next = a.CreateLabel(), wait = a.CreateLabel();
        a.xor(ecx, ecx);
        a.Label(ref next);
        a.mov(dx, 0x3fd);   // LSR
        a.Label(ref wait);
        a.@in(al, dx);
        a.test(al, 0x20);   // THRE
        a.jz(wait);
        a.mov(dx, 0x3f8);
        a.mov(al, cl);
        a.@out(dx, al);
        a.inc(ecx);
        a.cmp(ecx, Count);
        a.jne(next);
        a.mov(al, 0);
        a.@out(0xf4, al);
        a.hlt();
    });

    [Fact]
    public void A_console_that_blocks_forever_neither_holds_the_run_past_its_deadline_nor_keeps_the_vcpus()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(SpamKernel(), "spam");
        using var sink = new GatedSink();
        using var output = new ConsoleOutput(sink, ConsoleOutput.SpaceThreshold);
        try
        {
            var machine = new PcMachine(new MachineOptions(path) { Console = new HostConsole(output), Deadline = TimeSpan.FromSeconds(1) });
            var clock = Stopwatch.StartNew();
            MachineResult result = machine.Run();
            TimeSpan run = clock.Elapsed;
            bool vcpusEnded = machine.Vm.Vcpus.All(v => v.Completion.IsCompleted);
            clock.Restart();
            machine.Dispose();
            TimeSpan dispose = clock.Elapsed;

            Assert.True(sink.BlockedWrites == 1, "the test's sink was never written to, so it proved nothing");
            Assert.Equal(MachineOutcome.DeadlineExceeded, result.Outcome);
            Assert.True(run < TimeSpan.FromSeconds(4), $"a 1 s run took {run.TotalSeconds:0.0} s");
            Assert.True(vcpusEnded, "a vCPU was still running after the run, so Dispose cannot free the VM");
            Assert.True(dispose < TimeSpan.FromSeconds(2), $"Dispose took {dispose.TotalSeconds:0.0} s");
            Assert.True(output.DroppedBytes > 0);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_guest_that_polls_THRE_waits_for_a_stalled_console_and_loses_nothing()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(PollingWriterKernel(), "polling-writer");
        using var sink = new GatedSink();
        using var output = new ConsoleOutput(sink, ConsoleOutput.SpaceThreshold);
        try
        {
            using var machine = new PcMachine(new MachineOptions(path) { Console = new HostConsole(output), Deadline = Bound });
            Task<MachineResult> run = Task.Run(machine.Run, TestContext.Current.CancellationToken);

            Assert.True(SpinWait.SpinUntil(() => output.FreeSpace < 16 || run.IsCompleted, Bound), "the console never filled up");
            Thread.Sleep(300); // the guest spins on LSR now; nothing may be dropped meanwhile
            Assert.False(run.IsCompleted, "the guest finished while its console was stalled");
            Assert.Equal(0, output.DroppedBytes);
            sink.Open();

            Assert.True(run.Wait(Bound, TestContext.Current.CancellationToken), "the run did not end once the console drained");
            Assert.True(run.Result.Outcome == MachineOutcome.DebugExit, run.Result.Reason);
            Assert.True(output.Flush(Bound));
            Assert.Equal(Enumerable.Range(0, Count).Select(i => (byte)i), sink.Written);
            Assert.Equal(0, output.DroppedBytes);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Console_input_reaches_the_guest_and_its_receiver_is_inert_once_the_machine_is_gone()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(SerialInputTests.EchoKernel(), "echo-input");
        var input = new ScriptedInput("hello!"u8.ToArray());
        using var console = new CapturedConsole(input);
        try
        {
            using (var machine = new PcMachine(new MachineOptions(path) { Console = console.Console, Deadline = Bound }))
            {
                MachineResult result = machine.Run();
                Assert.True(result.Outcome == MachineOutcome.DebugExit, result.Reason);
            }

            Assert.Equal("hello", console.Text);
            Assert.True(input.Stopped, "the machine did not stop its input when the run ended");
            // What a late reader thread would do: nothing reaches the disposed machine, nothing throws.
            Assert.Equal(3, input.Receiver!.Offer("abc"u8));
            input.Receiver.RequestStop("too late");
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>An input that types its bytes on a thread of its own, offering them again while the guest's FIFO is full.</summary>
    private sealed class ScriptedInput(byte[] bytes) : IConsoleInput
    {
        public IConsoleReceiver? Receiver { get; private set; }

        public bool Stopped { get; private set; }

        public IDisposable Start(IConsoleReceiver receiver)
        {
            Receiver = receiver;
            var stop = new CancellationTokenSource();
            Task typing = Task.Run(() =>
            {
                ReadOnlySpan<byte> rest = bytes;
                while (!rest.IsEmpty && !stop.IsCancellationRequested)
                {
                    rest = rest[receiver.Offer(rest)..];
                    Thread.Sleep(1);
                }
            });
            return new Session(this, stop, typing);
        }

        private sealed class Session(ScriptedInput owner, CancellationTokenSource stop, Task typing) : IDisposable
        {
            public void Dispose()
            {
                stop.Cancel();
                typing.Wait(TimeSpan.FromSeconds(5));
                stop.Dispose();
                owner.Stopped = true;
            }
        }
    }
}
