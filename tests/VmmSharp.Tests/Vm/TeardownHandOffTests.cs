using System.Diagnostics;
using VmmSharp.Memory;
using VmmSharp.Tests.Support;
using VmmSharp.Vm;

namespace VmmSharp.Tests.Vm;

public class TeardownHandOffTests
{
    [Fact]
    public void AHelperProcessHoldsTheVmAfterItIsDisposedAndHoldsNothingElseOfOurs()
    {
        KvmRequirement.Ensure();
        int[] before = CatChildren();
        var vm = VirtualMachine.Create(GuestMemory.WithRam(2 << 20), irqchip: true);
        bool handedOff;
        try
        {
            handedOff = vm.HandOffTeardown();
        }
        finally
        {
            vm.Dispose();
        }
        Assert.True(handedOff, "no helper process started (is cat installed?)");
        int helper = Assert.Single(CatChildren().Except(before));
        try
        {
            string[] fds = [.. Directory.GetFiles($"/proc/{helper}/fd").Select(f => $"{Path.GetFileName(f)} -> {new FileInfo(f).LinkTarget}")];
            // The VM, still alive after our Dispose, and nothing that would keep our output open.
            Assert.Contains(fds, f => f.EndsWith("-> anon_inode:kvm-vm", StringComparison.Ordinal));
            Assert.Contains("1 -> /dev/null", fds);
            Assert.Contains("2 -> /dev/null", fds);
            Assert.Matches(@"^0 -> pipe:", fds.Single(f => f.StartsWith("0 ", StringComparison.Ordinal)));
            Assert.True(fds.Length == 4, string.Join("; ", fds));
        }
        finally
        {
            // It would end when this process exits; end it now, and the VM with it.
            Process.GetProcessById(helper).Kill();
        }
    }

    /// <summary>The <c>cat</c> processes whose parent is this process.</summary>
    private static int[] CatChildren()
    {
        var children = new List<int>();
        foreach (string dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
            {
                continue;
            }
            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(dir, "stat"));
            }
            catch (IOException)
            {
                continue; // it ended while we looked
            }
            // pid (comm) state ppid ...
            int close = stat.LastIndexOf(')');
            string comm = stat[(stat.IndexOf('(') + 1)..close];
            string[] rest = stat[(close + 2)..].Split(' ');
            if (comm == "cat" && rest[0] != "Z" && int.Parse(rest[1], System.Globalization.CultureInfo.InvariantCulture) == Environment.ProcessId)
            {
                children.Add(pid);
            }
        }
        return [.. children];
    }
}
