using System.Text;
using VmmSharp.Dispatch;

namespace VmmSharp.Cli.Commands;

/// <summary>The short report <c>vmm run</c> prints on stderr when the guest is done.</summary>
internal static class Summary
{
    public static void Print(VcpuRunResult result, TimeSpan elapsed, IReadOnlyList<VcpuDispatcher> vcpus)
    {
        var text = new StringBuilder();
        text.Append(result.Outcome switch
        {
            VcpuRunOutcome.Stopped => $"vmm: guest exited with status {result.Status} ({result.Reason})",
            VcpuRunOutcome.Cancelled => $"vmm: stopped: {result.Reason}",
            _ => $"vmm: error: {result.Reason}",
        });
        text.Append($" after {elapsed.TotalMilliseconds:0.0} ms\nvmm: exits:");
        foreach (VcpuEvent ev in Enum.GetValues<VcpuEvent>())
        {
            long count = vcpus.Sum(v => v.ExitCount(ev));
            if (count > 0)
            {
                text.Append($" {ev} {count}");
            }
        }
        Console.Error.WriteLine(text.ToString());
    }
}
