using VmmSharp.Arch.X86;
using VmmSharp.Boot;
using VmmSharp.Machine;
using VmmSharp.Tests.Guests;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Machine;

public class PvhBootTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public void PvhGuestSeesStartInfoModuleMemoryMapAndFwCfg()
    {
        KvmRequirement.Ensure();
        string module = MachineRun.WriteModule();
        try
        {
            const ulong mem = 128UL << 20;
            MachineRun run = MachineRun.Start(new MachineOptions(TestGuests.PvhKernel)
            {
                InitrdPath = module,
                CommandLine = "hello world",
                MemorySize = mem,
                CpuCount = 2,
            }, Deadline);

            Assert.Equal(KernelFormat.Pvh, run.Boot.Format);
            run.AssertLine("PVH magic=336ec578 version=1 flags=0x0 rsdp=0xe0000"); // start_info points at our ACPI RSDP
            run.AssertLine("PVH cmdline=hello world");
            run.AssertLine("PVH mods=1");
            string sum = MachineRun.Fnv1a(MachineRun.ModuleBytes).ToString("x8");
            Assert.Equal("82e16790", sum); // the value QEMU's run of the same module shows (tests/guests/README.md)
            run.AssertLine($"PVH mod0 paddr=0x{run.Boot.InitrdAddress:x} size=0x{MachineRun.ModuleBytes.Length:x} sum={sum} first={MachineRun.First(MachineRun.ModuleBytes)}");
            IReadOnlyList<E820Entry> map = run.Boot.MemoryMap.Entries;
            Assert.NotEmpty(map);
            for (int i = 0; i < map.Count; i++)
            {
                run.AssertLine($"PVH memmap {i} addr=0x{map[i].Address:x} size=0x{map[i].Size:x} type={(int)map[i].Type}");
            }
            Assert.DoesNotContain(run.Lines, l => l.StartsWith($"PVH memmap {map.Count} ", StringComparison.Ordinal));
            // Our map: usable low RAM up to the EBDA, usable RAM from 1 MiB to the end of the 128 MiB.
            Assert.Contains(map, e => e.Address == 0 && e.Size == Layout.EbdaStart && e.Type == E820Type.Ram);
            Assert.Contains(map, e => e.Address == Layout.HighMemoryStart && e.End == mem && e.Type == E820Type.Ram);
            long kernelSize = new FileInfo(TestGuests.PvhKernel).Length;
            run.AssertLine($"FWCFG sig=QEMU cpus=2 ram=0x{mem:x} cmdline_size=0xc kernel_size=0x{kernelSize:x} initrd_size=0x28");
            run.AssertLine("FWCFG cmdline=hello world");
            run.AssertDone();
        }
        finally
        {
            File.Delete(module);
        }
    }

    [Fact]
    public void MarkerGuestExitsWithStatusOne()
    {
        KvmRequirement.Ensure();
        MachineRun run = MachineRun.Start(new MachineOptions(TestGuests.MarkerKernel), Deadline);
        run.AssertLine("VMM-MARKER");
        Assert.True(run.Result.ExitStatus == 1 && run.Result.Outcome == MachineOutcome.DebugExit, run.Describe());
        Assert.True(run.Result.ExitCounts[VmmSharp.Dispatch.VcpuEvent.Io] > 0, run.Describe());
    }
}
