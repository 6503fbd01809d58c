using VmmSharp.Dispatch;
using VmmSharp.Guests;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Dispatch;

/// <summary>A handler sees exactly the groups its MTD names; only what it changed is written back.</summary>
public class MtdTests
{
    private const int Exits = 100;

    /// <summary>A CPL3 guest doing <see cref="Exits"/> port writes with RAX = i, then printing RAX and RBX.</summary>
    /// <summary>The transfers made after Startup, which has its own MTD.</summary>
    private sealed class Baseline
    {
        public long Transfers = -1;
        public long Writebacks = -1;

        public long TransfersSince(VcpuDispatcher d) => d.StateTransfers - Transfers;

        public long WritebacksSince(VcpuDispatcher d) => d.SyncWritebacks - Writebacks;
    }

    private static GuestRun LoopGuest(Mtd mtd, VcpuHandler onOut) => LoopGuest(mtd, onOut, out _);

    private static GuestRun LoopGuest(Mtd mtd, out Baseline baseline, VcpuHandler onOut) => LoopGuest(mtd, onOut, out baseline);

    private static GuestRun LoopGuest(Mtd mtd, VcpuHandler onOut, out Baseline baseline)
    {
        var b = baseline = new Baseline();
        var run = GuestRun.Create(GuestMode.User64, a =>
        {
            var loop = a.CreateLabel();
            a.mov(rbx, 0x5151_5151UL);
            a.xor(ecx, ecx);
            a.Label(ref loop);
            a.mov(eax, ecx);
            a.@out(0x80, al);   // the handler may change RAX here
            a.mov(r8, rax);
            a.inc(ecx);
            a.cmp(ecx, Exits);
            a.jb(loop);
            a.mov(rax, r8);
            a.@out(0xe9, al);   // the last RAX the guest saw
            a.mov(rax, rbx);
            a.@out(0xe9, al);   // RBX: never named, must be untouched
            a.ExitWith(0);
        });
        Assert.True(run.Vcpu.Register(VcpuEvent.Io, mtd, s =>
        {
            IoExit io = s.Io;
            if (io.Port == 0x80)
            {
                if (b.Transfers < 0)
                {
                    b.Transfers = s.Vcpu.StateTransfers;
                    b.Writebacks = s.SyncWritebacks;
                }
                onOut(s);
            }
            else if (io.Port == 0xe9)
            {
                run.Output.Append((char)io.Value);
            }
            else
            {
                s.Stop((int)io.Value, "exit");
            }
        }));
        return run;
    }

    [Fact]
    public void AChangedNamedGroupReachesTheGuest()
    {
        using GuestRun run = LoopGuest(Mtd.Qual | Mtd.Acdb, s => s.Rax = 'R', out Baseline b);
        run.Run().AssertStopped();
        Assert.Equal("RQ", run.Output.ToString());
        Assert.Equal(Exits, b.WritebacksSince(run.Vcpu)); // one write-back per changed exit, through kvm_run
        Assert.Equal(0, b.TransfersSince(run.Vcpu));       // and no ioctl
    }

    [Fact]
    public void AGroupTheMtdDoesNotNameCannotBeTouched()
    {
        string? error = null;
        using GuestRun run = LoopGuest(Mtd.Qual, s =>
        {
            try
            {
                _ = s.Rax;
            }
            catch (InvalidOperationException e)
            {
                error = e.Message;
            }
        });
        run.Run().AssertStopped();
        Assert.Contains("Acdb", error, StringComparison.Ordinal);
        Assert.Equal("cQ", run.Output.ToString()); // RAX = 99 ('c') and RBX as the guest left them
    }

    [Fact]
    public void AnUnnamedGroupIsNeitherReadNorWrittenBack()
    {
        using GuestRun run = LoopGuest(Mtd.Qual, _ => { }, out Baseline b);
        run.Run().AssertStopped();
        Assert.Equal(0, b.TransfersSince(run.Vcpu));
        Assert.Equal(0, b.WritebacksSince(run.Vcpu));
        Assert.Equal(0UL, run.Vcpu.Vcpu.SyncRequest); // KVM was not even asked to copy registers out
    }

    [Fact]
    public void ReadingANamedGroupWithoutChangingItWritesNothingBack()
    {
        ulong sum = 0;
        using GuestRun run = LoopGuest(Mtd.Qual | Mtd.Acdb, s => sum += s.Rax, out Baseline b);
        run.Run().AssertStopped();
        Assert.Equal((ulong)(Exits * (Exits - 1) / 2), sum);
        Assert.Equal(0, b.WritebacksSince(run.Vcpu));
        Assert.Equal(0, b.TransfersSince(run.Vcpu));
    }

    [Fact]
    public void AGroupOutsideSyncRegsCostsOneIoctlToReadAndOneToWrite()
    {
        // Every Io exit of the loop, the two prints and the exit fetch DR once (KVM_GET_DEBUGREGS).
        const int ioExits = Exits + 3;
        using (GuestRun reading = LoopGuest(Mtd.Qual | Mtd.Dr, s => _ = s.Dr7, out Baseline r))
        {
            reading.Run().AssertStopped();
            Assert.Equal(ioExits, r.TransfersSince(reading.Vcpu) + 1); // the baseline was taken after the first fetch
        }
        using GuestRun writing = LoopGuest(Mtd.Qual | Mtd.Dr, s => s.Dr7 = 0x400, out Baseline w);
        writing.Run().AssertStopped();
        Assert.Equal(ioExits + Exits, w.TransfersSince(writing.Vcpu) + 1); // plus one KVM_SET_DEBUGREGS per change
    }

    [Fact]
    public void SegmentsAndControlRegistersAreReadThroughSyncRegs()
    {
        ulong cr3 = 0, efer = 0;
        ushort cs = 0;
        using GuestRun run = LoopGuest(Mtd.Qual | Mtd.Cr | Mtd.Efer | Mtd.CsSs, out Baseline b, s =>
        {
            cr3 = s.Cr3;
            efer = s.Efer;
            cs = s.Cs.Selector;
        });
        run.Run().AssertStopped();
        Assert.Equal(TinyGuestLayout.Pml4, cr3);
        Assert.Equal(0x500UL, efer & 0x500);
        Assert.Equal(TinyGuestLayout.UserCode64, cs);
        Assert.Equal(0, b.TransfersSince(run.Vcpu));
    }
}
