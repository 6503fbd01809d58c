using Iced.Intel;
using VmmSharp.Buses;
using VmmSharp.Dispatch;
using VmmSharp.Emulation;
using VmmSharp.Guests;
using VmmSharp.Kvm;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Emulation;

/// <summary>
/// A tiny CPL0 guest with the emulation fallback on its InternalError portal, exception handlers in its IDT that record
/// what the CPU pushed and stop the vCPU, optional paging for the 32-bit guests (two-level or PAE), and an MMIO device at <see cref="MmioBase"/>.
/// </summary>
internal sealed class FallbackGuest : IDisposable
{
    /// <summary>Where the handlers record: vector (+0), CR2 (+8), the first pushed slot (+16: error code or RIP), the second (+24).</summary>
    public const ulong Record = 0x70000;

    /// <summary>The handler stubs, 0x40 bytes each.</summary>
    public const ulong Handlers = 0x60000;

    /// <summary>An MMIO window (inside the 64-bit guests' identity map, beyond RAM).</summary>
    public const ulong MmioBase = 0x1000_0000;

    /// <summary>The handlers stop the vCPU with this plus the vector.</summary>
    public const int HandlerStatus = 0x100;

    private const ulong PageDirectory32 = 0x50000;

    private FallbackGuest(GuestRun run, EmulationFallback fallback, MmioBus mmio, RecordingMmio device)
    {
        Run = run;
        Fallback = fallback;
        Mmio = mmio;
        Device = device;
    }

    public GuestRun Run { get; }

    public EmulationFallback Fallback { get; }

    public MmioBus Mmio { get; }

    public RecordingMmio Device { get; }

    public VmmSharp.Memory.GuestMemory Memory => Run.Vm.Memory;

    /// <summary>
    /// The modes the instruction tests run in: 64-bit (4-level paging), 32-bit with paging off, 32-bit with two-level
    /// (non-PAE) paging, 32-bit with PAE paging.
    /// </summary>
    public static TheoryData<GuestMode, GuestPaging> Modes => new()
    {
        { GuestMode.Long64, GuestPaging.FourLevel },
        { GuestMode.Protected32, GuestPaging.Off },
        { GuestMode.Protected32, GuestPaging.TwoLevel },
        { GuestMode.Protected32, GuestPaging.Pae },
    };

    public static FallbackGuest Create(GuestMode mode, GuestPaging paging, Action<Assembler> program, int vcpus = 1,
        bool xsave = false, Mtd extraStartupMtd = Mtd.None, Action<VcpuState>? startup = null, Action? floatingPointError = null,
        Action<VcpuState>? beforeFallback = null, bool fetchThroughPageWalk = false)
    {
        if ((mode == GuestMode.Long64) != (paging == GuestPaging.FourLevel) || mode is not (GuestMode.Long64 or GuestMode.Protected32))
        {
            throw new ArgumentException($"a {mode} fallback guest cannot have {paging} paging", nameof(paging));
        }
        bool sse = mode == GuestMode.Protected32;
        bool paging32 = paging is GuestPaging.TwoLevel or GuestPaging.Pae;
        if (paging32 && Paging32Refused[paging].Value is { } refused)
        {
            KvmRequirement.SkipHostLimitation($"this host's KVM cannot run a 32-bit guest with paging on: {refused}; the 64-bit variant of this test, with 4-level paging, runs here");
        }
        Action<Assembler> code = !paging32 ? program : a =>
        {
            EnablePaging32(a, paging);
            program(a);
        };
        var run = GuestRun.Create(mode, code, vcpus, extraStartupMtd: extraStartupMtd, startup: s =>
        {
            if (sse)
            {
                s.Cr4 |= 0x600; // OSFXSR, OSXMMEXCPT, as the 64-bit guests have
            }
            if (xsave)
            {
                s.Cr4 |= 1UL << 18; // OSXSAVE
            }
            startup?.Invoke(s);
        });
        try
        {
            var mmio = new MmioBus();
            var device = new RecordingMmio();
            mmio.Register(MmioBase, 0x1000, device);
            var fallback = new EmulationFallback(new GuestPhysicalSpace(run.Vm.Memory, mmio)) { FloatingPointError = floatingPointError, IgnoreExitBytes = fetchThroughPageWalk };
            var guest = new FallbackGuest(run, fallback, mmio, device);
            guest.InstallHandlers(mode);
            if (paging32)
            {
                guest.MapFirst4MiBAndMmio(paging);
            }
            foreach (VcpuDispatcher vcpu in run.Vm.Vcpus)
            {
                if (beforeFallback is null)
                {
                    Assert.True(fallback.Register(vcpu));
                }
                else
                {
                    // A portal of the test's own that does something first (what another vCPU could do meanwhile), then the fallback.
                    VcpuHandler emulate = fallback.CreateHandler();
                    Assert.True(vcpu.Register(VcpuEvent.InternalError, EmulationFallback.RequiredMtd, s =>
                    {
                        beforeFallback(s);
                        emulate(s);
                    }));
                }
                run.HandleConsoleAndExit(vcpu);
                if (xsave)
                {
                    EnableXsaveInCpuid(run, vcpu);
                }
            }
            return guest;
        }
        catch
        {
            run.Dispose();
            throw;
        }
    }

    public VcpuRunResult RunToStop() => Run.Run().AssertStopped();

    /// <summary>The vector a handler recorded, and what the CPU pushed.</summary>
    public (int Vector, ulong Cr2, ulong Slot0, ulong Slot1) Recorded()
        => ((int)Memory.Read<uint>(Record), Memory.Read<ulong>(Record + 8), Memory.Read<ulong>(Record + 16), Memory.Read<ulong>(Record + 24));

    /// <summary>Asserts that the guest took exception <paramref name="vector"/> at <paramref name="rip"/>, with <paramref name="errorCode"/> if it has one.</summary>
    public void AssertException(VcpuRunResult result, int vector, ulong rip, uint? errorCode = null)
    {
        Assert.Equal(HandlerStatus + vector, result.Status);
        var r = Recorded();
        Assert.Equal(vector, r.Vector);
        if (errorCode is { } code)
        {
            Assert.Equal(code, (uint)r.Slot0);
            Assert.Equal(rip, r.Slot1);
        }
        else
        {
            Assert.Equal(rip, r.Slot0);
        }
    }

    /// <summary>Maps <paramref name="linear"/> to nothing in the 64-bit identity map (its 2 MiB page becomes not present).</summary>
    public void Unmap64(ulong linear) => Memory.Write(PageDirectoryEntry64(linear), 0UL);

    /// <summary>Maps the 2 MiB page at <paramref name="linear"/> (in the first GiB) onto the one at 0, as the identity map maps 0.</summary>
    public void AliasFirstPage64(ulong linear) => Memory.Write(PageDirectoryEntry64(linear), Memory.Read<ulong>(PageDirectoryEntry64(0)));

    private static ulong PageDirectoryEntry64(ulong linear)
    {
        Assert.True(linear < 1UL << 30);
        return TinyGuestLayout.Pml4 + 0x2000 + ((linear >> 21) * 8);
    }

    public void Dispose() => Run.Dispose();

    /// <summary>The address of instruction number <paramref name="index"/> in the assembled code.</summary>
    public ulong InstructionAddress(int index)
    {
        var decoder = Iced.Intel.Decoder.Create(TinyGuest.Bitness(Run.Guest.Mode), Run.Guest.Code, TinyGuest.Entry);
        for (int i = 0; i < index; i++)
        {
            decoder.Decode();
        }
        return decoder.IP;
    }

    /// <summary>The address of the first instruction with <paramref name="mnemonic"/>.</summary>
    public ulong AddressOf(Mnemonic mnemonic)
    {
        var decoder = Iced.Intel.Decoder.Create(TinyGuest.Bitness(Run.Guest.Mode), Run.Guest.Code, TinyGuest.Entry);
        while (decoder.IP < TinyGuest.Entry + (ulong)Run.Guest.Code.Length)
        {
            Instruction i = decoder.Decode();
            if (i.Mnemonic == mnemonic)
            {
                return i.IP;
            }
        }
        throw new InvalidOperationException($"no {mnemonic} in the guest");
    }

    /// <summary>
    /// For each kind of 32-bit paging, why a 32-bit guest cannot turn it on here, as a probe guest measures it (null: it
    /// can): the probe loads CR3 and CR4 and sets CR0.PG, then reads memory through the new tables.
    /// </summary>
    private static readonly Dictionary<GuestPaging, Lazy<string?>> Paging32Refused = new()
    {
        [GuestPaging.TwoLevel] = new(() => ProbePaging32(GuestPaging.TwoLevel)),
        [GuestPaging.Pae] = new(() => ProbePaging32(GuestPaging.Pae)),
    };

    private static string? ProbePaging32(GuestPaging paging)
    {
        const int marker = 0x5a5a_0f0f;
        using var probe = Create(GuestMode.Protected32, GuestPaging.Off, a =>
        {
            EnablePaging32(a, paging);
            a.mov(eax, __dword_ptr[(int)Record + 0x100]); // through the new tables
            a.@out(0xf4, eax);
            a.hlt();
        });
        probe.MapFirst4MiBAndMmio(paging);
        probe.Memory.Write(Record + 0x100, (uint)marker);
        VcpuRunResult result = probe.Run.Run();
        string tables = paging == GuestPaging.Pae ? "PAE tables (CR4.PAE)" : "two-level tables (CR4.PAE clear)";
        if (result.Outcome == VcpuRunOutcome.Stopped && result.Status == marker)
        {
            return null;
        }
        if (result.Outcome == VcpuRunOutcome.Stopped && result.Status is >= HandlerStatus and < HandlerStatus + 32)
        {
            var r = probe.Recorded();
            ulong mov = probe.AddressOfCr0Write();
            string at = r.Slot1 == mov ? "at its mov to CR0 that sets PG" : $"at 0x{r.Slot1:x} (the mov to CR0 is at 0x{mov:x})";
            return $"a probe guest with {tables} took exception {r.Vector} (error code {r.Slot0 & 0xffff_ffff}) {at}";
        }
        return $"a probe guest with {tables} ended {result.Outcome}: {result.Reason}";
    }

    /// <summary>The address of the probe's <c>mov cr0, eax</c>.</summary>
    private ulong AddressOfCr0Write()
    {
        var decoder = Iced.Intel.Decoder.Create(32, Run.Guest.Code, TinyGuest.Entry);
        while (decoder.IP < TinyGuest.Entry + (ulong)Run.Guest.Code.Length)
        {
            Instruction i = decoder.Decode();
            if (i.Mnemonic == Mnemonic.Mov && i.Op0Register == Register.CR0)
            {
                return i.IP;
            }
        }
        return 0;
    }

    private static void EnablePaging32(Assembler a, GuestPaging paging)
    {
        a.mov(eax, (uint)PageDirectory32);
        a.mov(cr3, eax);
        a.mov(eax, cr4);
        if (paging == GuestPaging.Pae)
        {
            a.or(eax, 0x20);
        }
        else
        {
            a.and(eax, ~0x30); // no PAE, no PSE: 4 KiB pages through one page directory
        }
        a.mov(cr4, eax);
        a.mov(eax, cr0);
        a.or(eax, unchecked((int)0x8000_0000));
        a.mov(cr0, eax);
    }

    private static void EnableXsaveInCpuid(GuestRun run, VcpuDispatcher vcpu)
    {
        KvmCpuidEntry[] cpuid = run.Vm.Kvm.GetSupportedCpuid();
        for (int i = 0; i < cpuid.Length; i++)
        {
            if (cpuid[i].Function == 1)
            {
                cpuid[i].Ecx |= 1u << 26;
            }
        }
        vcpu.Vcpu.SetCpuid(cpuid);
    }

    /// <summary>
    /// The 32-bit guests' tables, identity-mapping the first 4 MiB and the MMIO page with 4 KiB pages. PAE: the PDPT at
    /// <see cref="PageDirectory32"/>, one page directory, two page tables for the 4 MiB and one for the MMIO page.
    /// Two-level: the page directory at <see cref="PageDirectory32"/>, one page table for the 4 MiB, one for the MMIO page.
    /// </summary>
    private void MapFirst4MiBAndMmio(GuestPaging paging)
    {
        const ulong present = 1, writable = 2;
        if (paging == GuestPaging.Pae)
        {
            ulong pd = PageDirectory32 + 0x1000, pt = PageDirectory32 + 0x2000, mmioPt = PageDirectory32 + 0x4000;
            Memory.Write(PageDirectory32, pd | present); // PDPTEs have no writable bit
            Memory.Write(pd, pt | present | writable);
            Memory.Write(pd + 8, (pt + 0x1000) | present | writable);
            Memory.Write(pd + ((MmioBase >> 21 & 511) * 8), mmioPt | present | writable);
            for (ulong i = 0; i < 1024; i++)
            {
                Memory.Write(pt + (i * 8), (i << 12) | present | writable);
            }
            Memory.Write(mmioPt + ((MmioBase >> 12 & 511) * 8), MmioBase | present | writable);
        }
        else
        {
            ulong pt = PageDirectory32 + 0x1000, mmioPt = PageDirectory32 + 0x2000;
            Memory.Write(PageDirectory32, (uint)(pt | present | writable));
            Memory.Write(PageDirectory32 + ((MmioBase >> 22) * 4), (uint)(mmioPt | present | writable));
            for (uint i = 0; i < 1024; i++)
            {
                Memory.Write(pt + (i * 4), (i << 12) | (uint)(present | writable));
            }
            Memory.Write(mmioPt + ((MmioBase >> 12 & 1023) * 4), (uint)(MmioBase | present | writable));
        }
    }

    private void InstallHandlers(GuestMode mode)
    {
        bool long64 = mode == GuestMode.Long64;
        for (int vector = 0; vector < 256; vector++)
        {
            ulong handler = Handlers + (ulong)(vector * 0x40);
            if (vector < 32 || vector == 0x80)
            {
                Memory.Write(handler, Stub(long64, vector, handler));
            }
            if (long64)
            {
                ulong gate = TinyGuestLayout.Idt + (ulong)(vector * 16);
                Memory.Write(gate, (handler & 0xffff) | ((ulong)TinyGuestLayout.KernelCode64 << 16) | (0x8eUL << 40) | ((handler >> 16 & 0xffff) << 48));
                Memory.Write(gate + 8, handler >> 32);
            }
            else
            {
                ulong gate = TinyGuestLayout.Idt + (ulong)(vector * 8);
                Memory.Write(gate, (handler & 0xffff) | ((ulong)TinyGuestLayout.KernelCode32 << 16) | (0x8eUL << 40) | ((handler >> 16 & 0xffff) << 48));
            }
        }
    }

    /// <summary>A handler that records the vector, CR2 and the two top stack slots, then stops the vCPU.</summary>
    private static byte[] Stub(bool long64, int vector, ulong at)
    {
        var a = new Assembler(long64 ? 64 : 32);
        if (long64)
        {
            a.mov(rbx, Record);
            a.mov(__dword_ptr[rbx], vector);
            a.mov(rax, cr2);
            a.mov(__qword_ptr[rbx + 8], rax);
            a.mov(rax, __qword_ptr[rsp]);
            a.mov(__qword_ptr[rbx + 16], rax);
            a.mov(rax, __qword_ptr[rsp + 8]);
            a.mov(__qword_ptr[rbx + 24], rax);
        }
        else
        {
            a.mov(ebx, (uint)Record);
            a.mov(__dword_ptr[ebx], vector);
            a.mov(eax, cr2);
            a.mov(__dword_ptr[ebx + 8], eax);
            a.mov(eax, __dword_ptr[esp]);
            a.mov(__dword_ptr[ebx + 16], eax);
            a.mov(eax, __dword_ptr[esp + 4]);
            a.mov(__dword_ptr[ebx + 24], eax);
        }
        a.mov(eax, HandlerStatus + vector);
        a.@out(0xf4, eax);
        a.hlt();
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), at);
        return stream.ToArray();
    }
}

/// <summary>An MMIO device that answers reads with its offset's bytes (0x10 + offset) and records writes.</summary>
internal sealed class RecordingMmio : IMmioDevice
{
    public List<(ulong Offset, byte[] Data)> Writes { get; } = [];

    public int Reads { get; private set; }

    public void Read(ulong offset, Span<byte> data)
    {
        Reads++;
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (byte)(0x10 + (int)offset + i);
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        lock (Writes)
        {
            Writes.Add((offset, data.ToArray()));
        }
    }
}

/// <summary>The paging a fallback test guest runs with.</summary>
public enum GuestPaging
{
    /// <summary>Paging off (32-bit guests).</summary>
    Off,

    /// <summary>32-bit paging with two-level tables (CR4.PAE clear).</summary>
    TwoLevel,

    /// <summary>32-bit PAE paging.</summary>
    Pae,

    /// <summary>4-level paging (64-bit guests).</summary>
    FourLevel,
}
