using VmmSharp.Arch.X86;
using VmmSharp.Boot;
using VmmSharp.Kvm;
using VmmSharp.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Machine;

/// <summary>
/// Debian's Linux kernel from <c>scripts/linux-guest.sh</c>, booted through PVH (<c>vmlinux</c>) and the bzImage
/// protocol. On PVM hosts Linux cannot finish booting (its CPL0 code is emulated, slowly and incompletely), so
/// these tests check what it prints early and report the rest as not run; with VMX/SVM they expect the initramfs.
/// </summary>
public class LinuxBootTests
{
    private const string CommandLine = "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1 i8042.noaux";
    // Debian's kernel clears its BSS and more before its first line; on a busy PVM host (load 40 on 2 cores) that alone
    // took over 60 s. The tests stop as soon as they have seen what they check.
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(180);
    private const ulong Memory = 256UL << 20;

    /// <summary>Where the artifacts are: $VMMSHARP_LINUX_GUEST, else artifacts/linux-guest under the repository root.</summary>
    private static string ArtifactDirectory()
    {
        if (Environment.GetEnvironmentVariable("VMMSHARP_LINUX_GUEST") is { Length: > 0 } dir)
        {
            return dir;
        }
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "VmmSharp.slnx")))
            {
                return Path.Combine(d.FullName, "artifacts", "linux-guest");
            }
        }
        return Path.Combine("artifacts", "linux-guest");
    }

    internal static string Artifact(string name)
    {
        string path = Path.Combine(ArtifactDirectory(), name);
        if (!File.Exists(path))
        {
            Assert.Skip($"not run: the Linux guest artifact '{path}' is missing. Produce it with 'scripts/linux-guest.sh' " +
                "(writes artifacts/linux-guest: bzImage, vmlinux, initramfs.cpio.gz) or point VMMSHARP_LINUX_GUEST at such a folder.");
        }
        return path;
    }

    private static bool Native => KvmSystem.Virtualization.Kind is HostVirtualizationKind.Vmx or HostVirtualizationKind.Svm;

    private static void ReportNotRun(string what)
    {
        if (!Native)
        {
            TestContext.Current.SendDiagnosticMessage(
                $"not run: {what}. This host's KVM is {KvmSystem.Virtualization.Kind}: {KvmSystem.Virtualization.Description}.");
        }
    }

    /// <summary>The lines Linux prints for our e820 map (e820__print_table).</summary>
    private static IEnumerable<string> E820Lines(E820Map map) => map.Entries.Select(e =>
        $"BIOS-e820: [mem 0x{e.Address:x16}-0x{e.End - 1:x16}] " + e.Type switch
        {
            E820Type.Ram => "usable",
            E820Type.Reserved => "reserved",
            E820Type.Acpi => "ACPI data",
            E820Type.Nvs => "ACPI NVS",
            E820Type.Unusable => "unusable",
            _ => $"type {(int)e.Type}",
        });

    [Fact]
    public void VmlinuxThroughPvhPrintsBannerCommandLineAndOurMemoryMap()
    {
        KvmRequirement.Ensure();
        string vmlinux = Artifact("vmlinux");
        string initrd = Artifact("initramfs.cpio.gz");
        string[] wanted = Native ? ["VMMSHARP-INIT-OK"] : ["Command line: ", "BIOS-e820: ", "ACPI: Using ACPI (MADT)"];
        MachineRun run = MachineRun.Start(new MachineOptions(vmlinux) { InitrdPath = initrd, CommandLine = CommandLine, MemorySize = Memory },
            Deadline, text => wanted.All(w => text.Contains(w, StringComparison.Ordinal)) && text.EndsWith('\n') && E820Done(text));

        Assert.Equal(KernelFormat.Pvh, run.Boot.Format);
        Assert.True(run.Output.Contains("Linux version ", StringComparison.Ordinal), $"no Linux banner\n{run.Describe()}");
        Assert.True(run.Output.Contains($"Command line: {CommandLine}", StringComparison.Ordinal), $"no command line\n{run.Describe()}");
        foreach (string line in E820Lines(run.Boot.MemoryMap))
        {
            Assert.True(run.Output.Contains(line, StringComparison.Ordinal), $"expected \"{line}\"\n{run.Describe()}");
        }
        Assert.Contains("BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable", run.Output, StringComparison.Ordinal);
        // Our ACPI tables: found through start_info.rsdp_paddr, accepted, and used for the CPUs and IRQ 0's wiring.
        Assert.True(run.Output.Contains("ACPI: RSDP 0x00000000000E0000 000024 (v02 VMMSHR)", StringComparison.Ordinal), $"no RSDP\n{run.Describe()}");
        Assert.True(run.Output.Contains("ACPI: INT_SRC_OVR (bus 0 bus_irq 0 global_irq 2 dfl dfl)", StringComparison.Ordinal), $"no IRQ 0 override\n{run.Describe()}");
        Assert.True(run.Output.Contains("ACPI: Using ACPI (MADT) for SMP configuration information", StringComparison.Ordinal), $"MADT not used\n{run.Describe()}");
        if (Native)
        {
            Assert.True(run.Output.Contains("VMMSHARP-INIT-OK", StringComparison.Ordinal), $"the initramfs did not run\n{run.Describe()}");
        }
        ReportNotRun("the rest of the Linux boot through PVH (initramfs, VMMSHARP-INIT-OK)");
    }

    [Fact]
    public void BzImageStartsDecompressing()
    {
        KvmRequirement.Ensure();
        string bzImage = Artifact("bzImage");
        string initrd = Artifact("initramfs.cpio.gz");
        // The decompressor prints its banner only with CONFIG_X86_VERBOSE_BOOTUP; Debian's kernel has it off, and then
        // the string is not in the image at all.
        bool verbose = File.ReadAllBytes(bzImage).AsSpan().IndexOf("Decompressing Linux"u8) >= 0;
        string? wanted = Native ? "VMMSHARP-INIT-OK" : verbose ? "Decompressing Linux..." : null;
        TimeSpan deadline = wanted is null ? TimeSpan.FromSeconds(15) : Deadline;
        MachineRun run = MachineRun.Start(new MachineOptions(bzImage) { InitrdPath = initrd, CommandLine = CommandLine, MemorySize = Memory },
            deadline, wanted is null ? null : text => text.Contains(wanted, StringComparison.Ordinal));

        Assert.Equal(KernelFormat.BzImage, run.Boot.Format);
        if (wanted is not null)
        {
            Assert.True(run.Output.Contains(wanted, StringComparison.Ordinal), $"expected \"{wanted}\"\n{run.Describe()}");
        }
        if (verbose)
        {
            Assert.True(run.Output.Contains("Decompressing Linux...", StringComparison.Ordinal), $"the decompressor did not start\n{run.Describe()}");
        }
        else if (!Native)
        {
            // A silent decompressor: check that it is running, in long mode, inside the buffer the kernel asked for.
            Assert.True(run.Result.Outcome == MachineOutcome.DeadlineExceeded, $"the bzImage failed instead of decompressing\n{run.Describe()}");
            System.Text.RegularExpressions.Match at = System.Text.RegularExpressions.Regex.Match(
                run.Result.Reason, @"vCPU 0 at RIP 0x([0-9a-f]+) \(64-bit, CPL 0\)");
            Assert.True(at.Success, $"vCPU 0 is not in 64-bit code\n{run.Describe()}");
            ulong rip = Convert.ToUInt64(at.Groups[1].Value, 16);
            Assert.True(rip >= run.Boot.KernelStart && rip < run.Boot.KernelEnd,
                $"RIP 0x{rip:x} is outside the kernel's buffer [0x{run.Boot.KernelStart:x}, 0x{run.Boot.KernelEnd:x})\n{run.Describe()}");
            TestContext.Current.SendDiagnosticMessage(
                $"not checked: \"Decompressing Linux...\" (this bzImage is built without CONFIG_X86_VERBOSE_BOOTUP, so its decompressor prints nothing); " +
                $"checked instead that it was running in long mode at RIP 0x{rip:x}, inside its buffer, after {deadline.TotalSeconds} s.");
        }
        ReportNotRun("the bzImage's decompression to its end and the Linux boot after it (initramfs, VMMSHARP-INIT-OK)");
    }

    // The map is printed as one block; stop once a line after it has begun.
    private static bool E820Done(string text)
    {
        int last = text.LastIndexOf("BIOS-e820: ", StringComparison.Ordinal);
        return last >= 0 && text.IndexOf('\n', last) is int end and >= 0 && text.Length > end + 1 + 10;
    }
}
