using System.Text;
using Iced.Intel;
using VmmSharp.Arch.X86;
using VmmSharp.Machine;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Machine;

/// <summary>
/// The whole interrupt path: COM1 raises IRQ 4, KVM_IRQ_LINE takes it to the in-kernel IOAPIC, which sends the
/// vector the guest programmed to its local APIC, which wakes the halted vCPU into the guest's handler.
/// </summary>
public class InterruptTests
{
    private const ulong IdtBase = 0x70000;
    private const byte Vector = 0x24;
    private const ulong IoApic = Layout.IoApicAddress, LocalApic = Layout.LocalApicAddress;

    /// <summary>A kernel that sleeps in HLT and echoes what the COM1 receive interrupt brings; '!' debug-exits.</summary>
    private static byte[] InterruptEchoKernel() => GuestImages.BzImageRunning(a =>
    {
        Label isr = a.CreateLabel(), idle = a.CreateLabel(), drain = a.CreateLabel(), done = a.CreateLabel(), finish = a.CreateLabel();
        a.mov(rsp, 0x6f000);      // the boot protocol gives no stack; interrupts need one
        // An IDT of its own with one gate: vector 0x24 -> isr (CS 0x10 is the boot protocol's code segment).
        a.lea(rax, __[isr]);
        a.mov(rbx, IdtBase + (Vector * 16));
        a.mov(__word_ptr[rbx], ax);
        a.mov(__word_ptr[rbx + 2], 0x10);
        a.mov(__word_ptr[rbx + 4], 0x8e00);
        a.shr(rax, 16);
        a.mov(__word_ptr[rbx + 6], ax);
        a.shr(rax, 16);
        a.mov(__dword_ptr[rbx + 8], eax);
        a.mov(rbx, IdtBase - 16);
        a.mov(__word_ptr[rbx], 0xfff);
        a.mov(rax, IdtBase);
        a.mov(__qword_ptr[rbx + 2], rax);
        a.lidt(__[rbx]);
        // Mask both 8259s: KVM wires the PIC to the BSP's LINT0 as ExtINT, and an unprogrammed PIC would deliver
        // the PIT's ticks as vector 0.
        a.mov(al, 0xff);
        a.@out(0x21, al);
        a.@out(0xa1, al);
        // Local APIC on (spurious vector 0xff); IOAPIC pin 4 -> vector 0x24, fixed, edge, to APIC 0.
        a.mov(rbx, LocalApic);
        a.mov(__dword_ptr[rbx + 0xf0], 0x1ff);
        a.mov(rbx, IoApic);
        a.mov(__dword_ptr[rbx], 0x10 + (2 * 4));
        a.mov(__dword_ptr[rbx + 0x10], Vector);
        a.mov(__dword_ptr[rbx], 0x11 + (2 * 4));
        a.mov(__dword_ptr[rbx + 0x10], 0);
        // COM1: receive interrupt on, OUT2 on (it gates the IRQ on a PC).
        a.mov(dx, 0x3f9);
        a.mov(al, 1);
        a.@out(dx, al);
        a.mov(dx, 0x3fc);
        a.mov(al, 0x08);
        a.@out(dx, al);
        a.sti();
        a.Label(ref idle);
        a.hlt();
        a.jmp(idle);

        a.Label(ref isr);
        a.nop();
        a.Label(ref drain);
        a.mov(dx, 0x3fd);        // LSR: data ready?
        a.@in(al, dx);
        a.test(al, 1);
        a.jz(done);
        a.mov(dx, 0x3f8);
        a.@in(al, dx);
        a.cmp(al, (byte)'!');
        a.je(finish);
        a.@out(dx, al);          // echo
        a.jmp(drain);
        a.Label(ref done);
        a.mov(rbx, LocalApic);
        a.mov(__dword_ptr[rbx + 0xb0], 0); // EOI
        a.iretq();
        a.Label(ref finish);
        a.mov(al, 0);
        a.@out(0xf4, al);
        a.hlt();
    });

    [Fact]
    public void Com1ReceiveInterruptReachesAHaltedGuestThroughTheIoapic()
    {
        KvmRequirement.Ensure();
        string path = GuestImages.Write(InterruptEchoKernel(), "irq");
        try
        {
            using var output = new CapturedConsole();
            MachineResult result = MachineRunner.Run(
                new MachineOptions(path) { Console = output.Console, Deadline = TimeSpan.FromSeconds(30) },
                m => Task.Run(async () =>
                {
                    // Let the guest program its interrupt controllers and halt first.
                    await Task.Delay(300);
                    m.Serial.EnqueueInput("irq"u8);
                    await Task.Delay(300);
                    m.Serial.EnqueueInput("!"u8);
                }));

            Assert.True(result.Outcome == MachineOutcome.DebugExit, $"{result.Reason}; output: {output.Text}");
            Assert.Equal("irq", output.Text);
            Assert.True(result.ExitCounts.GetValueOrDefault(VmmSharp.Dispatch.VcpuEvent.Io) < 200, "the guest polled instead of sleeping");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
