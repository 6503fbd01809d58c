using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VmmSharp.Tests.Support;

/// <summary>
/// A network namespace of the test's own (<c>ip netns add</c>), so a TAP, its address and the host-side sockets never
/// touch the host's real network; deleted (with everything in it) on dispose. Needs root, /dev/net/tun and iproute2:
/// <see cref="Create"/> skips the test with that reason where they are missing.
/// </summary>
internal sealed partial class NetNamespace : IDisposable
{
    private NetNamespace(string name) => Name = name;

    public string Name { get; }

    /// <summary>Makes a fresh namespace with its loopback up.</summary>
    public static NetNamespace Create()
    {
        if (Environment.UserName != "root" || !File.Exists("/dev/net/tun") || !RunIp("-V", out _))
        {
            Assert.Skip("not run: needs root, /dev/net/tun and iproute2 to make a TAP in a network namespace of its own");
        }
        var ns = new NetNamespace($"vmmsharp-{Guid.NewGuid():N}"[..20]);
        Assert.True(RunIp($"netns add {ns.Name}", out string error), $"ip netns add {ns.Name}: {error}");
        ns.Ip("link set lo up");
        return ns;
    }

    /// <summary>A persistent TAP in the namespace with the host side's address, up, IPv4 only: what a VMM then attaches to by name.</summary>
    public void AddTap(string tap, string hostMac, string hostAddress)
    {
        Ip($"tuntap add dev {tap} mode tap vnet_hdr");
        // No IPv6 on it: its router solicitations and MLD reports would take receive buffers the test counts.
        string ipv6 = $"/proc/sys/net/ipv6/conf/{tap}/disable_ipv6";
        Run(() =>
        {
            if (File.Exists(ipv6))
            {
                File.WriteAllText(ipv6, "1");
            }
            return 0;
        });
        Ip($"link set {tap} address {hostMac}");
        Ip($"addr add {hostAddress} dev {tap}");
        Ip($"link set {tap} up");
    }

    /// <summary>
    /// Waits until the kernel has seen the TAP's carrier (a process attached to it): until then, and for up to a
    /// second after (the link watcher's delay), its queueing discipline drops whatever the host sends.
    /// </summary>
    public bool WaitForCarrier(string tap, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            string link = IpOutput($"link show {tap}");
            if (link.Contains("LOWER_UP", StringComparison.Ordinal) && !link.Contains("state DOWN", StringComparison.Ordinal))
            {
                return true;
            }
            Thread.Sleep(20);
        }
        return false;
    }

    /// <summary>Runs <c>ip -n NAME ARGUMENTS</c> (split at spaces) and asserts it succeeded.</summary>
    public void Ip(string arguments)
    {
        bool ok = RunIp($"-n {Name} {arguments}", out string error);
        Assert.True(ok, $"ip -n {Name} {arguments}: {error}");
    }

    /// <summary>The output of <c>ip -n NAME ARGUMENTS</c>.</summary>
    public string IpOutput(string arguments)
    {
        var psi = new ProcessStartInfo("ip", ["-n", Name, .. arguments.Split(' ')]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using Process p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit(10_000);
        return output;
    }

    /// <summary>
    /// Runs <paramref name="action"/> on a thread of its own that joined the namespace: a TAP opened or a socket made
    /// there belongs to it, wherever it is used later. Exceptions come back to the caller.
    /// </summary>
    public T Run<T>(Func<T> action)
    {
        T? result = default;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using SafeFileHandle ns = File.OpenHandle($"/run/netns/{Name}");
                if (SetNs(ns, 0x40000000 /* CLONE_NEWNET */) != 0)
                {
                    throw new IOException($"setns: errno {Marshal.GetLastPInvokeError()}");
                }
                result = action();
            }
#pragma warning disable CA1031 // rethrown on the caller's thread
            catch (Exception e)
#pragma warning restore CA1031
            {
                error = e;
            }
        }, 4 << 20);
        thread.Start();
        thread.Join();
        if (error is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        }
        return result!;
    }

    public void Dispose() => RunIp($"netns del {Name}", out _);

    private static bool RunIp(string arguments, out string error)
    {
        var psi = new ProcessStartInfo("ip", arguments.Split(' ')) { RedirectStandardError = true, RedirectStandardOutput = true };
        try
        {
            using Process p = Process.Start(psi)!;
            error = p.StandardError.ReadToEnd();
            p.WaitForExit(10_000);
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            error = e.Message;
            return false;
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(SafeFileHandle fd, int nstype);
}
