using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace VmmSharp.Tests.Guests;

/// <summary>
/// The freestanding C test guests of <c>tests/guests/</c>, built once per test run with the
/// machine's gcc, make and ld into <c>$TMPDIR/vmmsharp-guests-&lt;hash of the sources&gt;</c>.
/// The first property read builds them (thread-safe, and safe between processes: the build
/// goes to a private folder that is renamed into place); later reads only return paths.
/// </summary>
public static class TestGuests
{
    private static readonly string[] RequiredTools = ["gcc", "make", "ld"];
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(5);
    private static readonly Lazy<string> Built = new(Build, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>ELF32 Multiboot v1 kernel: prints the MBI facts, fw_cfg and starts the APs.</summary>
    public static string MultibootKernel => Path.Combine(OutputDirectory, "multiboot.elf");

    /// <summary>ELF32 PVH kernel: prints the hvm_start_info facts and fw_cfg.</summary>
    public static string PvhKernel => Path.Combine(OutputDirectory, "pvh.elf");

    /// <summary>Smallest PVH kernel: prints <c>VMM-MARKER</c> and debug-exits with 0.</summary>
    public static string MarkerKernel => Path.Combine(OutputDirectory, "marker.elf");

    /// <summary>
    /// ELF32 PVH virtio test guest: finds the virtio-mmio devices (ACPI DSDT, or <c>discover=cmdline</c>) and runs the
    /// tests its command line names (<c>blk</c>, <c>net</c>, <c>rng</c>, <c>hostile=CASE</c>); see tests/guests/README.md.
    /// </summary>
    public static string VirtioKernel => Path.Combine(OutputDirectory, "virtio.elf");

    /// <summary>ELF64 PVH kernel: the virtio benchmark driver (polls at CPL3); <c>bench=blk|net count=N</c> on its command line.</summary>
    public static string VirtioBenchKernel => Path.Combine(OutputDirectory, "virtio-bench.elf");

    /// <summary>Folder that holds the built guests (builds them on first use).</summary>
    public static string OutputDirectory => Built.Value;

    /// <summary>The guests' source folder, <c>tests/guests</c> of the repository.</summary>
    public static string SourceDirectory => Path.Combine(FindRepositoryRoot(), "tests", "guests");

    private static string Build()
    {
        foreach (var tool in RequiredTools)
        {
            if (FindOnPath(tool) is null)
            {
                throw new InvalidOperationException(
                    $"Building the test guests needs '{tool}', which is not on PATH. " +
                    "Install the toolchain with: apt-get install gcc make binutils");
            }
        }

        var source = SourceDirectory;
        var target = Path.Combine(Path.GetTempPath(), "vmmsharp-guests-" + HashSources(source));
        if (IsComplete(target))
        {
            return target;
        }

        var staging = $"{target}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            RunMake(source, staging);
            if (!IsComplete(staging))
            {
                throw new InvalidOperationException($"make finished but did not produce the guests in {staging}.");
            }

            try
            {
                Directory.Move(staging, target);
            }
            catch (IOException) when (IsComplete(target))
            {
                // Another test process finished the same build first: use its output.
            }
        }
        finally
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
        }

        return target;
    }

    private static bool IsComplete(string dir) =>
        File.Exists(Path.Combine(dir, "multiboot.elf")) &&
        File.Exists(Path.Combine(dir, "pvh.elf")) &&
        File.Exists(Path.Combine(dir, "marker.elf")) &&
        File.Exists(Path.Combine(dir, "virtio.elf")) &&
        File.Exists(Path.Combine(dir, "virtio-bench.elf"));

    private static void RunMake(string source, string output)
    {
        var psi = new ProcessStartInfo("make")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("-C");
        psi.ArgumentList.Add(source);
        psi.ArgumentList.Add("OUT=" + output);

        using var process = Process.Start(psi)
            ?? throw new InvalidOperationException("Could not start make to build the test guests.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(BuildTimeout))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"Building the test guests with make took longer than {BuildTimeout}.");
        }

        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"Building the test guests failed: make -C {source} OUT={output} exited with {process.ExitCode}.\n" +
                stdout.GetAwaiter().GetResult() + stderr.GetAwaiter().GetResult());
        }
    }

    /// <summary>SHA-256 over the relative path and content of every source file (build output excluded).</summary>
    private static string HashSources(string source)
    {
        var files = Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(source, f).Replace('\\', '/'))
            .Where(rel => !rel.StartsWith("out/", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToList();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var rel in files)
        {
            hash.AppendData(Encoding.UTF8.GetBytes(rel + "\0"));
            hash.AppendData(File.ReadAllBytes(Path.Combine(source, rel)));
            hash.AppendData("\0"u8);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "VmmSharp.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException(
            $"Could not find VmmSharp.slnx above {AppContext.BaseDirectory}: the test guests' sources (tests/guests) are located from the repository root.");
    }

    private static string? FindOnPath(string tool)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
