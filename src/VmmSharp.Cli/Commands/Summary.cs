using VmmSharp.Dispatch;

namespace VmmSharp.Cli.Commands;

/// <summary>The short report <c>vmm run</c> prints on stderr when the guest is done: what ended it, the time, the exits.</summary>
internal static class Summary
{
    public static void Print(string headline, TimeSpan elapsed, IReadOnlyDictionary<VcpuEvent, long> exits, string? remark = null)
    {
        string counts = string.Join(' ', exits.Select(e => $"{e.Key} {e.Value}"));
        Console.Error.WriteLine($"vmm: {headline} after {elapsed.TotalMilliseconds:0.0} ms{(remark is null ? "" : $" ({remark})")}\nvmm: exits: {counts}");
    }
}
