using System.Globalization;

namespace VmmSharp.Cli.Bench;

/// <summary>
/// <c>vmm bench blk</c>: 4 KiB sequential and random reads and writes with every queue entry in flight, from the
/// virtio-bench guest (a polling driver at CPL3, so the emulated CPL0 of a PVM host costs nothing per request), on
/// vmm's virtio-blk and (with <c>--qemu</c>) QEMU microvm's, alternating rounds, over the same raw file in the page
/// cache on both sides (vmm: buffered <c>pread</c>/<c>pwrite</c>; QEMU: <c>cache=writeback,aio=threads</c>, its default).
/// </summary>
internal static class BlkBench
{
    private static readonly string[] Tests = ["seqread", "randread", "seqwrite", "randwrite"];

    public static int Run(string? guest, string? vmm, bool qemu, int rounds, int requests, int diskMiB)
    {
        guest = BenchGuests.Existing(guest ?? BenchGuests.Build("virtio-bench.elf"));
        vmm = BenchGuests.Vmm(vmm);
        if (qemu)
        {
            BenchGuests.RequireQemu();
        }
        string image = Path.Combine(Path.GetTempPath(), $"vmm-bench-blk-{Environment.ProcessId}.img");
        try
        {
            WriteImage(image, diskMiB);
            string cmdline = $"bench=blk count={requests}";
            string[] vmmArgs = [vmm, "run", "--kernel", guest, "--mem", "128M", "--disk", image, "--cmdline", cmdline, "--timeout", "300"];
            List<string> qemuArgs = BenchGuests.QemuMicrovm(guest, cmdline, 128);
            qemuArgs.AddRange(["-drive", $"id=d0,file={image},format=raw,if=none,cache=writeback,aio=threads", "-device", "virtio-blk-device,drive=d0"]);
            Console.WriteLine($"blk: {requests} requests of 4 KiB per test, every queue entry in flight, {rounds} rounds{(qemu ? " alternating vmm and qemu" : "")}; " +
                $"{diskMiB} MiB raw image {image}, page cache on both sides; guest {guest}");
            var runs = new Dictionary<string, List<List<GuestPhases.Phase>>> { ["vmm"] = [], ["qemu"] = [] };
            for (int round = 0; round < rounds; round++)
            {
                // Alternate which goes first, so neither always meets the other's dirty pages being written back.
                var order = new List<(string Name, string[] Argv)> { ("vmm", vmmArgs) };
                if (qemu)
                {
                    order.Insert(round % 2 == 0 ? 1 : 0, ("qemu", [.. qemuArgs]));
                }
                foreach ((string name, string[] argv) in order)
                {
                    List<GuestPhases.Phase> phases = Once(name, argv);
                    runs[name].Add(phases);
                    Console.WriteLine($"  round {round + 1} {name,-4} " + string.Join("  ", phases.Select(p => $"{p.Name} {p.Rate,7:0} IOPS")));
                }
            }
            Console.WriteLine($"  {"test",-10} {"vmm IOPS",10} {"MiB/s",7}" + (qemu ? $" {"qemu IOPS",10} {"MiB/s",7} {"ratio",6}" : ""));
            foreach (string test in Tests)
            {
                double v = Median(runs["vmm"], test);
                string line = $"  {test,-10} {v,10:0} {MiB(v),7:0.0}";
                if (qemu)
                {
                    double q = Median(runs["qemu"], test);
                    line += $" {q,10:0} {MiB(q),7:0.0} {v / q,6:0.00}";
                }
                Console.WriteLine(line);
            }
            double vmmIops = Overall(runs["vmm"]);
            if (!qemu)
            {
                Console.WriteLine($"blk: vmm {vmmIops:0} IOPS ({MiB(vmmIops):0.0} MiB/s)");
                return 0;
            }
            double qemuIops = Overall(runs["qemu"]);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"blk: vmm {vmmIops:0} IOPS, qemu {qemuIops:0} IOPS, ratio {vmmIops / qemuIops:0.00}"));
            return 0;
        }
        finally
        {
            File.Delete(image);
        }
    }

    private static List<GuestPhases.Phase> Once(string name, string[] argv)
    {
        var phases = new GuestPhases();
        ChildProcess.Result r = ChildProcess.Run(argv, "BENCH done", TimeSpan.FromSeconds(300), phases.OnLine, withStderr: true);
        phases.Check(name, r);
        return phases.Phases;
    }

    /// <summary>A raw image of <paramref name="mib"/> MiB with data in every block (no holes: reads go to the page cache).</summary>
    private static void WriteImage(string path, int mib)
    {
        var block = new byte[1 << 20];
        new Random(6).NextBytes(block);
        using FileStream f = File.Create(path);
        for (int i = 0; i < mib; i++)
        {
            f.Write(block);
        }
    }

    private static double MiB(double iops) => iops * 4096 / (1 << 20);

    private static double Median(List<List<GuestPhases.Phase>> runs, string test) =>
        Statistics.Median(runs.Select(r => r.Single(p => p.Name == test).Rate));

    /// <summary>The median over rounds of all four tests' requests over their time together.</summary>
    private static double Overall(List<List<GuestPhases.Phase>> runs) =>
        Statistics.Median(runs.Select(r => r.Sum(p => p.Count) / r.Sum(p => p.Seconds)));
}
