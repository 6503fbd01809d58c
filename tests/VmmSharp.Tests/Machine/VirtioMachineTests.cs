using Iced.Intel;
using VmmSharp.Arch.X86;
using VmmSharp.Devices.Virtio.Rng;
using VmmSharp.Machine;
using VmmSharp.Tests.Support;
using static Iced.Intel.AssemblerRegisters;

namespace VmmSharp.Tests.Machine;

/// <summary>
/// A real guest on /dev/kvm drives a virtio-mmio device of the PC machine with a small driver of its own: the
/// handshake through MMIO exits, the queue notification through the ioeventfd (or the MMIO exit where the host
/// has none), the device's work on the event loop, the interrupt through irqfd.
/// </summary>
public class VirtioMachineTests
{
    internal const ulong Desc = 0x400000, Avail = 0x401000, Used = 0x402000, Buffer = 0x403000;

    /// <summary>
    /// The driver: reset, ACKNOWLEDGE|DRIVER, VERSION_1 only, FEATURES_OK, queue 0 of 16 entries, DRIVER_OK; then one
    /// 64-byte writable buffer made available and notified. It waits (bounded) for the used ring and debug-exits with
    /// InterruptStatus (1: used buffer), or 0x40 + a step number when something fails.
    /// </summary>
    internal static byte[] RngDriverKernel() => GuestImages.BzImageRunning(a =>
    {
        Label fail = a.CreateLabel(), poll = a.CreateLabel(), done = a.CreateLabel();
        a.mov(rbx, Layout.VirtioMmioBase);
        a.mov(__dword_ptr[rbx + 0x70], 0);
        a.mov(__dword_ptr[rbx + 0x70], 1);
        a.mov(__dword_ptr[rbx + 0x70], 3);
        a.mov(__dword_ptr[rbx + 0x24], 1);
        a.mov(__dword_ptr[rbx + 0x20], 1);          // VERSION_1 (bit 32)
        a.mov(__dword_ptr[rbx + 0x24], 0);
        a.mov(__dword_ptr[rbx + 0x20], 0);
        a.mov(__dword_ptr[rbx + 0x70], 11);
        a.mov(eax, __dword_ptr[rbx + 0x70]);
        a.mov(dl, 0x41);
        a.test(al, 8);
        a.jz(fail);
        a.mov(__dword_ptr[rbx + 0x30], 0);
        a.mov(__dword_ptr[rbx + 0x38], 16);
        a.mov(__dword_ptr[rbx + 0x80], (uint)Desc);
        a.mov(__dword_ptr[rbx + 0x84], 0);
        a.mov(__dword_ptr[rbx + 0x90], (uint)Avail);
        a.mov(__dword_ptr[rbx + 0x94], 0);
        a.mov(__dword_ptr[rbx + 0xa0], (uint)Used);
        a.mov(__dword_ptr[rbx + 0xa4], 0);
        a.mov(__dword_ptr[rbx + 0x44], 1);
        a.mov(__dword_ptr[rbx + 0x70], 15);         // DRIVER_OK
        // Only now a buffer: so only the guest's notification can make the device take it.
        a.mov(rdi, Desc);
        a.mov(rax, Buffer);
        a.mov(__qword_ptr[rdi], rax);
        a.mov(__dword_ptr[rdi + 8], 64);
        a.mov(__word_ptr[rdi + 12], 2);              // VIRTQ_DESC_F_WRITE
        a.mov(rdi, Avail);
        a.mov(__word_ptr[rdi + 4], 0);
        a.mov(__word_ptr[rdi + 2], 1);
        a.mov(__dword_ptr[rbx + 0x50], 0);          // QueueNotify
        a.mov(ecx, 20_000_000);
        a.mov(rsi, Used);
        a.Label(ref poll);
        a.cmp(__word_ptr[rsi + 2], 1);
        a.je(done);
        a.dec(ecx);
        a.jnz(poll);
        a.mov(dl, 0x42);
        a.jmp(fail);
        a.Label(ref done);
        a.mov(eax, __dword_ptr[rbx + 0x60]);        // InterruptStatus
        a.@out(0xf4, al);
        a.hlt();
        a.Label(ref fail);
        a.mov(al, dl);
        a.@out(0xf4, al);
        a.hlt();
    });

    [Fact]
    public void A_guest_driver_gets_random_bytes_from_virtio_rng_through_ioeventfd_and_irqfd()
    {
        KvmRequirement.Ensure();
        string kernel = GuestImages.Write(RngDriverKernel(), "virtio-rng-driver");
        try
        {
            using var machine = new PcMachine(new MachineOptions(kernel)
            {
                Rng = true,
                Deadline = TimeSpan.FromSeconds(60),
            });
            MachineResult result = machine.Run();

            Assert.True(result.Outcome == MachineOutcome.DebugExit, $"{result.Outcome}: {result.Reason}");
            Assert.Equal((1 << 1) | 1, result.ExitStatus); // InterruptStatus = used buffer
            var rng = (VirtioRng)machine.VirtioDevices[0].Device;
            Assert.Equal(64, rng.BytesProvided);
            byte[] bytes = new byte[64];
            machine.Vm.Memory.Read(Buffer, bytes);
            Assert.Contains(bytes, b => b != 0);
            Assert.Equal((0u, 64u), (machine.Vm.Memory.Read<uint>(Used + 4), machine.Vm.Memory.Read<uint>(Used + 8)));
            // With ioeventfd the notification never reached the vCPU's exit path; without, it came as one MMIO exit.
            Assert.Equal(machine.VirtioUsesEventFds ? 0 : 1, machine.VirtioDevices[0].NotifyExits);
            TestContext.Current.SendDiagnosticMessage(machine.VirtioUsesEventFds
                ? "virtio: ioeventfd and irqfd on this host"
                : "virtio: this host lacks ioeventfd/irqfd; the fallback path was tested");
        }
        finally
        {
            File.Delete(kernel);
        }
    }

    [Fact]
    public void The_command_line_names_each_virtio_device_and_the_dsdt_describes_it()
    {
        KvmRequirement.Ensure();
        string kernel = GuestImages.Write(GuestImages.TripleFault(), "virtio-cmdline");
        try
        {
            using var machine = new PcMachine(new MachineOptions(kernel) { Rng = true, CommandLine = "console=ttyS0" });
            Assert.Equal("console=ttyS0 virtio_mmio.device=4K@0xd0000000:5", machine.CommandLine);
            Assert.Equal(machine.CommandLine, machine.Vm.Memory.ReadCString(machine.Boot.CommandLineAddress));
        }
        finally
        {
            File.Delete(kernel);
        }
    }

    [Fact]
    public void A_missing_disk_image_is_one_clear_error_naming_it()
    {
        KvmRequirement.Ensure();
        string kernel = GuestImages.Write(GuestImages.TripleFault(), "virtio-missing-disk");
        try
        {
            var e = Assert.Throws<MachineConfigurationException>(() => new PcMachine(new MachineOptions(kernel)
            {
                Disks = [new DiskOptions("/nonexistent/disk.img")],
            }));
            Assert.Contains("'/nonexistent/disk.img'", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', e.Message);
        }
        finally
        {
            File.Delete(kernel);
        }
    }
}
