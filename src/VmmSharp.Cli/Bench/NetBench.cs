using System.Globalization;

namespace VmmSharp.Cli.Bench;

/// <summary>
/// <c>vmm bench net</c>: frames per second guest→TAP (the guest keeps every transmit queue entry in flight with
/// 60-byte frames) and TAP→guest (a raw socket on the host side of the TAP sends as fast as it can; the guest keeps
/// every receive buffer posted), from the virtio-bench guest, on vmm's virtio-net and (with <c>--qemu</c>) QEMU
/// microvm's (<c>-netdev tap,vnet_hdr=on</c>), alternating rounds, on a TAP in a network namespace of the bench's own.
/// </summary>
internal static class NetBench
{
    private const string Tap = "vmmbench0";

    public static int Run(string? guest, string? vmm, bool qemu, int rounds, int frames)
    {
        guest = BenchGuests.Existing(guest ?? BenchGuests.Build("virtio-bench.elf"));
        vmm = BenchGuests.Vmm(vmm);
        if (qemu)
        {
            BenchGuests.RequireQemu();
        }
        NetNamespace.Enter(); // this thread, and every process it starts from here on
        NetNamespace.CreateTap(Tap);
        using var sender = new NetNamespace.Sender(Tap);
        string cmdline = $"bench=net count={frames}";
        string[] vmmArgs = [vmm, "run", "--kernel", guest, "--mem", "128M", "--net", $"tap={Tap}", "--cmdline", cmdline, "--timeout", "300"];
        List<string> qemuArgs = BenchGuests.QemuMicrovm(guest, cmdline, 128);
        qemuArgs.AddRange(["-netdev", $"tap,id=n0,ifname={Tap},script=no,downscript=no,vnet_hdr=on", "-device", "virtio-net-device,netdev=n0"]);
        Console.WriteLine($"net: {frames} frames of 60 bytes each way per round, every queue entry in flight, {rounds} rounds" +
            $"{(qemu ? " alternating vmm and qemu" : "")}; TAP {Tap} in a network namespace of the bench's own; guest {guest}");
        var runs = new Dictionary<string, List<List<GuestPhases.Phase>>> { ["vmm"] = [], ["qemu"] = [] };
        for (int round = 0; round < rounds; round++)
        {
            var order = new List<(string Name, string[] Argv)> { ("vmm", vmmArgs) };
            if (qemu)
            {
                order.Insert(round % 2 == 0 ? 1 : 0, ("qemu", [.. qemuArgs]));
            }
            foreach ((string name, string[] argv) in order)
            {
                long txBefore = NetNamespace.ReceivedFrames(Tap); // the guest's transmit is the host side's receive
                List<GuestPhases.Phase> phases = Once(name, argv, sender);
                long arrived = NetNamespace.ReceivedFrames(Tap) - txBefore;
                GuestPhases.Phase tx = phases.Single(p => p.Name == "tx");
                if (arrived < tx.Count)
                {
                    throw new VmmException($"{name}: the guest sent {tx.Count} frames but the TAP received {arrived}");
                }
                runs[name].Add(phases);
                Console.WriteLine($"  round {round + 1} {name,-4} " + string.Join("  ", phases.Select(p => $"{p.Name} {p.Rate,8:0} pps")));
            }
        }
        Console.WriteLine($"  {"test",-4} {"vmm pps",10}" + (qemu ? $" {"qemu pps",10} {"ratio",6}" : ""));
        foreach (string test in new[] { "tx", "rx" })
        {
            double v = Median(runs["vmm"], test);
            Console.WriteLine($"  {test,-4} {v,10:0}" + (qemu ? $" {Median(runs["qemu"], test),10:0} {v / Median(runs["qemu"], test),6:0.00}" : ""));
        }
        double vmmPps = Overall(runs["vmm"]);
        if (!qemu)
        {
            Console.WriteLine($"net: vmm {vmmPps:0} pps");
            return 0;
        }
        double qemuPps = Overall(runs["qemu"]);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"net: vmm {vmmPps:0} pps, qemu {qemuPps:0} pps, ratio {vmmPps / qemuPps:0.00}"));
        return 0;
    }

    private static List<GuestPhases.Phase> Once(string name, string[] argv, NetNamespace.Sender sender)
    {
        var phases = new GuestPhases(line =>
        {
            if (line == "BENCH rx ready")
            {
                sender.Start();
            }
            else if (line.StartsWith("BENCH rx end", StringComparison.Ordinal))
            {
                sender.Stop();
            }
        });
        try
        {
            ChildProcess.Result r = ChildProcess.Run(argv, "BENCH done", TimeSpan.FromSeconds(300), phases.OnLine, withStderr: true);
            phases.Check(name, r);
            return phases.Phases;
        }
        finally
        {
            sender.Stop();
        }
    }

    private static double Median(List<List<GuestPhases.Phase>> runs, string test) =>
        Statistics.Median(runs.Select(r => r.Single(p => p.Name == test).Rate));

    /// <summary>The median over rounds of both directions' frames over their time together.</summary>
    private static double Overall(List<List<GuestPhases.Phase>> runs) =>
        Statistics.Median(runs.Select(r => r.Sum(p => p.Count) / r.Sum(p => p.Seconds)));
}
