using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VmmSharp.Tests.Support;

/// <summary>
/// A network namespace of the test's own (<c>ip netns add</c>), deleted on dispose: network tests touch no interface of
/// the host's. <see cref="Run{T}"/> runs code on a thread that joined it, so the TAPs and sockets that code opens
/// belong to the namespace (and stay there when other threads use them).
/// </summary>
internal sealed partial class NetNamespace : IDisposable
{
    private NetNamespace(string name) => Name = name;

    public string Name { get; }

    /// <summary>Why the host cannot make one (not root, no /dev/net/tun, no iproute2), or null when it can.</summary>
    public static string? Unavailable()
        => Environment.UserName != "root" ? "needs root"
            : !File.Exists("/dev/net/tun") ? "needs /dev/net/tun"
            : !TryIp("-V") ? "needs iproute2 (ip)"
            : null;

    public static NetNamespace Create()
    {
        var ns = new NetNamespace($"vmmsharp-{Guid.NewGuid():N}"[..20]);
        RunIp("netns add " + ns.Name, check: true);
        return ns;
    }

    /// <summary>A namespace for a test that needs one; skips the test with the reason where the host cannot make it.</summary>
    public static NetNamespace CreateOrSkip()
    {
        if (Unavailable() is { } why)
        {
            Assert.Skip($"not run: {why} to make a TAP in a network namespace of its own");
        }
        NetNamespace ns = Create();
        ns.Ip("link set lo up");
        return ns;
    }

    /// <summary>Runs <c>ip -n NAME arguments</c>; fails the test if it fails.</summary>
    public string Ip(string arguments) => RunIp($"-n {Name} {arguments}", check: true);

    /// <summary>A persistent TAP in the namespace with the host side's MAC and address, up, IPv4 only: what a VMM then attaches to by name.</summary>
    public void AddTap(string tap, string hostMac, string hostAddress)
    {
        Ip($"tuntap add dev {tap} mode tap vnet_hdr");
        // No IPv6 on it: its router solicitations and MLD reports would take receive buffers the tests count.
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
            string link = Ip($"link show {tap}");
            if (link.Contains("LOWER_UP", StringComparison.Ordinal) && !link.Contains("state DOWN", StringComparison.Ordinal))
            {
                return true;
            }
            Thread.Sleep(20);
        }
        return false;
    }

    /// <summary>Runs <paramref name="action"/> on a thread in the namespace and returns its result (or rethrows its exception).</summary>
    public T Run<T>(Func<T> action)
    {
        T? result = default;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using SafeFileHandle ns = File.OpenHandle($"/run/netns/{Name}");
                if (SetNs(ns, CloneNewNet) != 0)
                {
                    throw new IOException($"setns({Name}): errno {Marshal.GetLastPInvokeError()}");
                }
                result = action();
            }
#pragma warning disable CA1031 // rethrown on the caller's thread
            catch (Exception e)
#pragma warning restore CA1031
            {
                error = e;
            }
        });
        thread.Start();
        thread.Join();
        if (error is not null)
        {
            throw new InvalidOperationException($"in network namespace {Name}: {error.Message}", error);
        }
        return result!;
    }

    public void Dispose() => RunIp("netns del " + Name, check: false);

    private const int CloneNewNet = 0x40000000;

    private static bool TryIp(string arguments)
    {
        try
        {
            RunIp(arguments, check: false);
            return true;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    private static string RunIp(string arguments, bool check)
    {
        var psi = new ProcessStartInfo("ip", arguments.Split(' ')) { RedirectStandardError = true, RedirectStandardOutput = true };
        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(10_000))
        {
            p.Kill();
            Assert.Fail($"ip {arguments} took longer than 10 s");
        }
        if (check)
        {
            Assert.True(p.ExitCode == 0, $"ip {arguments}: {stderr.GetAwaiter().GetResult()}");
        }
        return stdout.GetAwaiter().GetResult();
    }

    [LibraryImport("libc.so.6", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(SafeFileHandle fd, int nstype);
}
