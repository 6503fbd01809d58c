using VmmSharp.Devices.Virtio.Block;
using VmmSharp.Dispatch;
using VmmSharp.Machine;
using VmmSharp.Memory;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Machine;

/// <summary>
/// Linux's virtio-blk driver mounting its root from our disk, paused in the middle of its disk I/O: with the vCPUs
/// parked (a recall whose handler blocks) and the devices paused, no device thread writes guest memory; after the
/// resume the guest finishes the mount.
/// </summary>
public class DevicePauseLinuxTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(240);

    [Fact]
    public void Paused_devices_write_no_guest_memory_while_linux_does_disk_io()
    {
        KvmRequirement.Ensure();
        string image = VirtioLinuxTests.Ext4Image();
        try
        {
            using var console = new CapturedConsole();
            using var machine = new PcMachine(new MachineOptions(LinuxTinyKernel.Vmlinux)
            {
                CommandLine = LinuxTinyKernel.CommandLine("root=/dev/vda rw rootfstype=ext4"),
                Disks = [new DiskOptions(image)],
                MemorySize = 64UL << 20,
                Console = console.Console,
                Deadline = Deadline,
            });
            using var gate = new ManualResetEventSlim(true);
            int parked = 0;
            foreach (VcpuDispatcher vcpu in machine.Vm.Vcpus)
            {
                // The seed's pause: a recall whose handler blocks until released.
                Assert.True(vcpu.Register(VcpuEvent.Recall, Mtd.None, _ =>
                {
                    Interlocked.Increment(ref parked);
                    gate.Wait();
                    Interlocked.Decrement(ref parked);
                }));
            }
            var disk = (VirtioBlock)machine.VirtioDevices[0].Device;
            Task<MachineResult> run = Task.Factory.StartNew(machine.Run, TaskCreationOptions.LongRunning);

            // Wait for the driver's first requests (the partition scan), then pause while it works on.
            if (!SpinWait.SpinUntil(() => disk.Completed > 0 || run.IsCompleted, Deadline))
            {
                machine.RequestStop(0, "timeout");
            }
            if (disk.Completed == 0)
            {
                MachineResult early = run.Result;
                Assert.Skip($"not run: the kernel did not reach its disk within {Deadline.TotalSeconds} s on this host ({early.Outcome}: {early.Reason})");
            }
            gate.Reset();
            foreach (VcpuDispatcher vcpu in machine.Vm.Vcpus)
            {
                vcpu.Recall();
            }
            Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref parked) == machine.Vm.Vcpus.Count, TimeSpan.FromSeconds(30)), "the vCPUs did not park");
            machine.PauseDevices();
            long completedAtPause = disk.Completed;
            byte[] before = Ram(machine.Vm.Memory);
            Thread.Sleep(500);
            byte[] after = Ram(machine.Vm.Memory);
            long completedAfter = disk.Completed;
            machine.ResumeDevices();
            gate.Set();

            Assert.Equal(completedAtPause, completedAfter);
            int changed = before.AsSpan().CommonPrefixLength(after);
            Assert.True(changed == before.Length, $"guest memory changed at 0x{changed:x} while the VM was paused");

            // The guest goes on: the mount finishes after the resume.
            bool mounted = SpinWait.SpinUntil(() => console.Text.Contains("EXT4-fs (vda): mounted filesystem", StringComparison.Ordinal) || run.IsCompleted, Deadline);
            machine.RequestStop(0, "the test saw what it waited for");
            MachineResult result = run.Result;
            TestContext.Current.SendDiagnosticMessage($"paused after {completedAtPause} disk request(s); {disk.Completed} in all; {result.Outcome}");
            if (!mounted && result.Outcome == MachineOutcome.DeadlineExceeded)
            {
                Assert.Skip($"the pause held, but the mount did not finish within {Deadline.TotalSeconds} s on this host (PVM, busy)");
            }
            Assert.True(console.Text.Contains("EXT4-fs (vda): mounted filesystem", StringComparison.Ordinal), $"the guest did not finish its mount after the resume: {result.Outcome} {result.Reason}\n{console.Text}");
        }
        finally
        {
            File.Delete(image);
        }
    }

    private static byte[] Ram(GuestMemory memory)
    {
        var all = new List<byte>();
        foreach (GuestRegion region in memory.Regions)
        {
            byte[] bytes = new byte[region.Size];
            memory.Read(region.GuestAddress, bytes);
            all.AddRange(bytes);
        }
        return [.. all];
    }
}
