using VmmSharp.Arch.X86;
using VmmSharp.Boot;
using VmmSharp.Machine;
using VmmSharp.Tests.Guests;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Machine;

public class MultibootBootTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public void MultibootGuestSeesMbiModuleFwCfgAndStartsItsAp()
    {
        KvmRequirement.Ensure();
        string module = MachineRun.WriteModule();
        try
        {
            const ulong mem = 128UL << 20;
            string kernel = TestGuests.MultibootKernel;
            MachineRun run = MachineRun.Start(new MachineOptions(kernel)
            {
                InitrdPath = module,
                CommandLine = "hello world",
                MemorySize = mem,
                CpuCount = 2,
            }, Deadline);

            Assert.Equal(KernelFormat.Multiboot, run.Boot.Format);
            run.AssertLine("MB magic=2badb002");
            run.AssertLineStartsWith("MB flags=0x");
            // mem_upper: KiB of RAM from 1 MiB on, which our map gives up to the end of RAM.
            run.AssertLine($"MB mem_lower=639 mem_upper={(mem - Layout.HighMemoryStart) / 1024}");
            IReadOnlyList<E820Entry> map = run.Boot.MemoryMap.Entries;
            for (int i = 0; i < map.Count; i++)
            {
                run.AssertLine($"MB mmap {i} base=0x{map[i].Address:x} len=0x{map[i].Size:x} type={(int)map[i].Type}");
            }
            Assert.DoesNotContain(run.Lines, l => l.StartsWith($"MB mmap {map.Count} ", StringComparison.Ordinal));
            run.AssertLine($"MB cmdline={kernel} hello world");
            run.AssertLine("MB mods=1");
            int size = MachineRun.ModuleBytes.Length;
            ulong start = run.Boot.InitrdAddress ?? throw new InvalidOperationException("no module address");
            Assert.Equal(0UL, start % 4096); // the guest's header asks for page-aligned modules
            run.AssertLine($"MB mod0 start=0x{start:x} end=0x{start + (ulong)size:x} size=0x{size:x} " +
                $"sum={MachineRun.Fnv1a(MachineRun.ModuleBytes):x8} first={MachineRun.First(MachineRun.ModuleBytes)}");
            run.AssertLine($"MB mod0 cmdline={module}");
            long kernelSize = new FileInfo(kernel).Length;
            run.AssertLine($"FWCFG sig=QEMU cpus=2 ram=0x{mem:x} cmdline_size=0xc kernel_size=0x{kernelSize:x} initrd_size=0x{size:x}");
            run.AssertLine("FWCFG cmdline=hello world");
            run.AssertLine("SMP cpus=2");
            run.AssertDone();
        }
        finally
        {
            File.Delete(module);
        }
    }

    [Fact]
    public void MultibootGuestWithOneCpuSendsNoIpis()
    {
        KvmRequirement.Ensure();
        MachineRun run = MachineRun.Start(new MachineOptions(TestGuests.MultibootKernel) { MemorySize = 64UL << 20 }, Deadline);
        run.AssertLine($"MB mem_lower=639 mem_upper={((64UL << 20) - Layout.HighMemoryStart) / 1024}");
        run.AssertLine("MB mods=0");
        run.AssertLine("SMP cpus=1");
        run.AssertDone();
    }
}
