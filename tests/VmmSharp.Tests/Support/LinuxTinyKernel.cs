using VmmSharp.Kvm;

namespace VmmSharp.Tests.Support;

/// <summary>
/// The small Linux test kernel that <c>scripts/linux-tiny.sh</c> builds from Debian's linux-source-6.1: where its
/// files are, and the command line it boots with. A test that needs it calls one of the path properties: where the
/// kernel is not built, the test is skipped with the command that builds it; under <c>VMMSHARP_REQUIRE_KVM=1</c>
/// (CI, which builds it) a missing kernel is a failure instead.
/// </summary>
internal static class LinuxTinyKernel
{
    /// <summary>The environment variable that points at the folder the script wrote (CI sets it).</summary>
    public const string EnvironmentVariable = "VMMSHARP_LINUX_TINY";

    /// <summary>The command line every boot of this kernel starts from: the log on the 8250, and a panic reboots at once (so a run ends on its own).</summary>
    public const string BaseCommandLine = "console=ttyS0 panic=-1";

    /// <summary>
    /// What a PVM host adds. Its KVM ORs the host's own user-visible features into CPUID leaves 1 and 7 whatever the VMM
    /// sets (measured: leaf 1 ECX gains 0x76d81203 here, XSAVE, AVX and POPCNT among them; leaf 7 EBX gains SMAP, ERMS,
    /// CLWB...), so <c>--cpuid-mask</c> cannot hide them and the kernel must be told: SMAP's <c>clac</c>/<c>stac</c> and
    /// <c>popcnt</c> fail in KVM's emulator, and with ERMS/FSRM <c>memset</c>/<c>memcpy</c> go a byte per emulated
    /// iteration instead of eight. The rest was found with <c>vmm run --profile</c> (docs/PERFORMANCE.md): <c>rodata=off</c>
    /// skips mark_rodata_ro's page-attribute walk over the kernel image and the freeing, with poisoning, of its alignment gaps
    /// (<c>free_reserved_area</c> and <c>__change_page_attr_set_clr</c>: 9 % of a boot's samples), protection no test needs;
    /// <c>pty.legacy_count=0</c> stops a kernel built with CONFIG_LEGACY_PTYS (tiny.config now leaves it out; a kernel without
    /// it ignores the parameter) from registering 512 pty devices. With both, a boot took 18 M emulated instructions instead of 56 M.
    /// </summary>
    public const string PvmCommandLine = "clearcpuid=smap,popcnt,erms,fsrm rodata=off pty.legacy_count=0";

    /// <summary>What the kernel prints when it starts <c>/init</c> from the initramfs.</summary>
    public const string InitStart = "Run /init as init process";

    /// <summary>What <c>/init</c> prints once it runs (then it powers off).</summary>
    public const string InitMarker = "VMMSHARP-INIT-OK";

    /// <summary>The folder with the kernel: $VMMSHARP_LINUX_TINY, else artifacts/linux-tiny under the repository root.</summary>
    public static string Directory { get; } = FindDirectory();

    /// <summary>The kernel without ACPI (<c>vmlinux</c>, booted through PVH): devices from the command line.</summary>
    public static string Vmlinux => Require("vmlinux");

    /// <summary>The kernel with ACPI (<c>vmlinux-acpi</c>): devices from the DSDT, power-off through ACPI S5.</summary>
    public static string AcpiVmlinux => Require("vmlinux-acpi");

    /// <summary>The initramfs: an /init (scripts/linux-tiny/init.c) that prints <see cref="InitMarker"/> and powers off.</summary>
    public static string Initramfs => Require("initramfs.cpio");

    /// <summary>The command line for this host: <see cref="BaseCommandLine"/>, <see cref="PvmCommandLine"/> on PVM, then <paramref name="extra"/>.</summary>
    public static string CommandLine(string extra = "")
    {
        string line = KvmSystem.Virtualization.Kind == HostVirtualizationKind.Pvm ? $"{BaseCommandLine} {PvmCommandLine}" : BaseCommandLine;
        return extra.Length == 0 ? line : $"{line} {extra}";
    }

    private static string Require(string name)
    {
        string path = Path.Combine(Directory, name);
        if (File.Exists(path))
        {
            return path;
        }
        string why = $"the small Linux test kernel '{path}' is missing. Build it with 'scripts/linux-tiny.sh artifacts/linux-tiny' " +
            $"(from Debian's linux-source-6.1, a few minutes) or point {EnvironmentVariable} at the folder it wrote";
        if (Environment.GetEnvironmentVariable("VMMSHARP_REQUIRE_KVM") == "1")
        {
            Assert.Fail($"VMMSHARP_REQUIRE_KVM=1, but {why}");
        }
        Assert.Skip($"not run: {why}.");
        return path;
    }

    private static string FindDirectory()
    {
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } dir)
        {
            return dir;
        }
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "VmmSharp.slnx")))
            {
                return Path.Combine(d.FullName, "artifacts", "linux-tiny");
            }
        }
        return Path.Combine("artifacts", "linux-tiny");
    }
}
