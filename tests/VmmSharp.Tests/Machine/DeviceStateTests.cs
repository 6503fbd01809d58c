using VmmSharp.Devices.Virtio.Rng;
using VmmSharp.Machine;
using VmmSharp.State;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Machine;

/// <summary>The PC machine's devices saved after a real guest drove them, and restored into a machine of the same shape.</summary>
public class DeviceStateTests
{
    [Fact]
    public void Devices_a_guest_drove_come_back_in_a_fresh_machine()
    {
        KvmRequirement.Ensure();
        string kernel = GuestImages.Write(VirtioMachineTests.RngDriverKernel(), "devstate-rng");
        try
        {
            var options = new MachineOptions(kernel) { Rng = true, Deadline = TimeSpan.FromSeconds(60) };
            var writer = new StateWriter();
            using (var machine = new PcMachine(options))
            {
                MachineResult result = machine.Run();
                Assert.True(result.Outcome == MachineOutcome.DebugExit, $"{result.Outcome}: {result.Reason}");
                machine.Serial.Write(7, [0x5a]); // scratch
                machine.SaveDevices(writer);
            }

            using var fresh = new PcMachine(options);
            var reader = new StateReader(writer.WrittenSpan, "snapshot");
            fresh.RestoreDevices(ref reader);
            reader.EnsureEnd();

            var rng = (VirtioRng)fresh.VirtioDevices[0].Device;
            Assert.True(rng.IsActive);
            Assert.Equal(1, rng.Queues[0].NextAvail);
            Assert.Equal(1, rng.Queues[0].NextUsed);
            Assert.Equal(1u, fresh.VirtioDevices[0].InterruptStatus);
            Span<byte> scratch = stackalloc byte[1];
            fresh.Serial.Read(7, scratch);
            Assert.Equal(0x5a, scratch[0]);
        }
        finally
        {
            File.Delete(kernel);
        }
    }

    [Fact]
    public void A_machine_with_other_virtio_devices_refuses_the_state()
    {
        KvmRequirement.Ensure();
        string kernel = GuestImages.Write(GuestImages.TripleFault(), "devstate-count");
        try
        {
            var writer = new StateWriter();
            using (var machine = new PcMachine(new MachineOptions(kernel) { Rng = true }))
            {
                machine.SaveDevices(writer);
            }
            using var other = new PcMachine(new MachineOptions(kernel));
            var error = Assert.Throws<StateFormatException>(() =>
            {
                var reader = new StateReader(writer.WrittenSpan, "snapshot");
                other.RestoreDevices(ref reader);
            });
            Assert.Contains("virtio device count 1 is not this machine's 0", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(kernel);
        }
    }

    [Fact]
    public void Pausing_and_resuming_devices_of_a_machine_that_has_not_run_is_harmless()
    {
        KvmRequirement.Ensure();
        string kernel = GuestImages.Write(GuestImages.TripleFault(), "devstate-pause");
        try
        {
            using var machine = new PcMachine(new MachineOptions(kernel) { Rng = true });
            machine.PauseDevices();
            machine.PauseDevices();
            Assert.True(machine.DevicesPaused);
            Assert.Equal(0, machine.Serial.EnqueueInput("x"u8));
            machine.ResumeDevices();
            Assert.False(machine.DevicesPaused);
            Assert.Equal(1, machine.Serial.EnqueueInput("x"u8));
        }
        finally
        {
            File.Delete(kernel);
        }
    }
}
