using System.Diagnostics;
using System.IO.Compression;
using System.Net.Sockets;
using System.Text;
using VmmSharp.Kvm;
using VmmSharp.Machine;
using VmmSharp.Tests.Support;

namespace VmmSharp.Tests.Machine;

/// <summary>
/// Debian's stock kernel with its own modules: <c>scripts/linux-guest.sh</c> puts the kernel package's virtio, vsock and
/// ext4 modules (with their dependencies) into the initramfs with an <c>/init</c> that loads them, reads and writes a
/// file on the virtio disk, talks to the host over vsock and powers off. What the script builds is checked here on any
/// host; running that <c>/init</c> needs a host with hardware virtualization (under PVM user mode cannot make a system
/// call: DESIGN.md), and is skipped elsewhere with that reason.
/// </summary>
public sealed class LinuxGuestModulesTests
{
    private static readonly byte[] Elf = [0x7f, (byte)'E', (byte)'L', (byte)'F'];

    private static readonly string[] Wanted =
    [
        "virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "failover", "net_failover", "virtio_net", "virtio_console",
        "virtio-rng", "vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport", "jbd2", "mbcache", "ext4",
    ];

    [Fact]
    public void The_initramfs_holds_the_virtio_modules_after_their_dependencies_and_an_init_that_loads_them()
    {
        if (!Directory.EnumerateFiles("/boot", "vmlinuz-*").Any() || !File.Exists("/bin/busybox") || !File.Exists("/sbin/modprobe"))
        {
            Assert.Skip("not run: needs Debian's linux-image-amd64, busybox-static and kmod installed (scripts/linux-guest.sh installs them as root)");
        }
        string output = Directory.CreateTempSubdirectory("vmmsharp-linux-guest").FullName;
        try
        {
            RunScript(output);
            Dictionary<string, byte[]> files = ReadCpio(Path.Combine(output, "initramfs.cpio.gz"));

            string[] order = Encoding.ASCII.GetString(files["lib/modules/order"]).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            foreach (string module in Wanted)
            {
                Assert.Contains($"{module}.ko", order);
                Assert.True(files[$"lib/modules/{module}.ko"].AsSpan(0, 4).SequenceEqual(Elf), $"{module}.ko is not an ELF module");
            }
            // Each module comes after what it needs (modprobe's order): insmod cannot resolve symbols otherwise.
            AssertBefore(order, "virtio_ring.ko", "virtio_mmio.ko");
            AssertBefore(order, "virtio.ko", "virtio_blk.ko");
            AssertBefore(order, "failover.ko", "net_failover.ko");
            AssertBefore(order, "net_failover.ko", "virtio_net.ko");
            AssertBefore(order, "vsock.ko", "vmw_vsock_virtio_transport_common.ko");
            AssertBefore(order, "vmw_vsock_virtio_transport_common.ko", "vmw_vsock_virtio_transport.ko");
            AssertBefore(order, "jbd2.ko", "ext4.ko");
            string init = Encoding.ASCII.GetString(files["init"]);
            Assert.Contains("insmod /lib/modules/", init, StringComparison.Ordinal);
            Assert.Contains("mount -t ext4 /dev/vda /mnt", init, StringComparison.Ordinal);
            Assert.Contains("/bin/vsock-hello 5000", init, StringComparison.Ordinal);
            Assert.Contains("poweroff -f", init, StringComparison.Ordinal);
            Assert.True(files.ContainsKey("bin/vsock-hello"), "no vsock client in the initramfs");
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    [Fact]
    public void Debian_kernel_loads_its_modules_uses_the_virtio_disk_and_talks_to_the_host_over_vsock()
    {
        KvmRequirement.Ensure();
        if (KvmSystem.Virtualization.Kind == HostVirtualizationKind.Pvm)
        {
            Assert.Skip("not run: the initramfs's /init cannot run on this host: its KVM is PVM, where a user-mode syscall does not enter " +
                "the guest kernel (DESIGN.md), so no guest user space runs. Not checked here: the modules loading, the disk's file read and " +
                "written back, the vsock exchange. Runs on a host with VMX/SVM.");
        }
        string dir = LinuxGuestDirectory();
        string vmlinux = Path.Combine(dir, "vmlinux"), initrd = Path.Combine(dir, "initramfs.cpio.gz");
        if (!File.Exists(vmlinux) || !File.Exists(initrd) || !ReadCpio(initrd).ContainsKey("lib/modules/order"))
        {
            Assert.Skip($"not run: '{dir}' has no initramfs with modules; build it with 'scripts/linux-guest.sh {dir}'");
        }
        string image = Ext4Image("from the host side\n");
        string uds = Path.Combine(Path.GetTempPath(), $"vmmsharp-vsock-{Guid.NewGuid():N}.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint($"{uds}_5000"));
        listener.Listen(1);
        string? heard = null;
        var host = new Thread(() =>
        {
            using Socket s = listener.Accept();
            using var stream = new NetworkStream(s);
            using var reader = new StreamReader(stream);
            heard = reader.ReadLine();
            stream.Write("hello from the host\n"u8);
        })
        { IsBackground = true };
        host.Start();
        try
        {
            MachineRun run = MachineRun.Start(new MachineOptions(vmlinux)
            {
                InitrdPath = initrd,
                CommandLine = "console=ttyS0 panic=-1",
                MemorySize = 256UL << 20,
                Disks = [new DiskOptions(image)],
                Vsock = new VsockOptions(3, uds),
            }, TimeSpan.FromSeconds(120), text => text.Contains("VMMSHARP-GUEST-DONE", StringComparison.Ordinal));

            run.AssertLine("VMMSHARP-INIT-OK");
            Assert.DoesNotContain("VMMSHARP-MODULE-FAIL", run.Output, StringComparison.Ordinal);
            run.AssertLineStartsWith("VMMSHARP-MODULES-LOADED");
            run.AssertLine("VMMSHARP-DISK-READ from the host side");
            run.AssertLine("VMMSHARP-DISK-WRITTEN");
            run.AssertLine("VMMSHARP-VSOCK-OK hello from the host");
            Assert.Equal("hello from the guest's /init", heard);
            Assert.Equal("written by the guest's /init\n", DebugFsCat(image, "/from-guest.txt"));
        }
        finally
        {
            File.Delete(image);
            File.Delete($"{uds}_5000");
        }
    }

    private static void AssertBefore(string[] order, string first, string then)
        => Assert.True(Array.IndexOf(order, first) < Array.IndexOf(order, then), $"{first} is not loaded before {then}: {string.Join(' ', order)}");

    private static string RepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "VmmSharp.slnx")))
            {
                return d.FullName;
            }
        }
        throw new DirectoryNotFoundException($"no VmmSharp.slnx above {AppContext.BaseDirectory}");
    }

    private static string LinuxGuestDirectory()
        => Environment.GetEnvironmentVariable("VMMSHARP_LINUX_GUEST") is { Length: > 0 } dir ? dir : Path.Combine(RepositoryRoot(), "artifacts", "linux-guest");

    private static void RunScript(string output)
    {
        var psi = new ProcessStartInfo("bash", [Path.Combine(RepositoryRoot(), "scripts", "linux-guest.sh"), output])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using Process p = Process.Start(psi)!;
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        _ = p.StandardOutput.ReadToEndAsync();
        Assert.True(p.WaitForExit(300_000), "scripts/linux-guest.sh took longer than 300 s");
        Assert.True(p.ExitCode == 0, $"scripts/linux-guest.sh failed: {stderr.Result}");
    }

    /// <summary>The regular files of a gzipped newc cpio archive, by path.</summary>
    private static Dictionary<string, byte[]> ReadCpio(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var all = new MemoryStream();
        gz.CopyTo(all);
        byte[] b = all.ToArray();
        var files = new Dictionary<string, byte[]>();
        int at = 0;
        while (at + 110 <= b.Length)
        {
            Assert.Equal("070701", Encoding.ASCII.GetString(b, at, 6));
            int Field(int i) => Convert.ToInt32(Encoding.ASCII.GetString(b, at + 6 + (8 * i), 8), 16);
            int mode = Field(1), size = Field(6), nameSize = Field(11);
            string name = Encoding.ASCII.GetString(b, at + 110, nameSize - 1);
            int data = (at + 110 + nameSize + 3) & ~3;
            if (name == "TRAILER!!!")
            {
                break;
            }
            if ((mode & 0xF000) == 0x8000)
            {
                files[name.StartsWith("./", StringComparison.Ordinal) ? name[2..] : name] = b.AsSpan(data, size).ToArray();
            }
            at = (data + size + 3) & ~3;
        }
        return files;
    }

    private static string Ext4Image(string content)
    {
        string dir = Directory.CreateTempSubdirectory("vmmsharp-guestdisk").FullName;
        string image = Path.Combine(Path.GetTempPath(), $"vmmsharp-guestdisk-{Guid.NewGuid():N}.ext4");
        try
        {
            File.WriteAllText(Path.Combine(dir, "from-host.txt"), content);
            using (FileStream f = File.Create(image))
            {
                f.SetLength(16 << 20);
            }
            Run("mkfs.ext4", ["-q", "-F", "-d", dir, image]);
            return image;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string DebugFsCat(string image, string file) => Run("debugfs", ["-R", $"cat {file}", image]);

    private static string Run(string program, string[] arguments)
    {
        var psi = new ProcessStartInfo(program, arguments) { RedirectStandardError = true, RedirectStandardOutput = true };
        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(60_000) && p.ExitCode == 0, $"{program} {string.Join(' ', arguments)} failed");
        return stdout.Result;
    }
}
