using VmmSharp.Dispatch;

namespace VmmSharp.Cli.Commands;

/// <summary>The short report <c>vmm run</c> prints on stderr when the guest is done: what ended it, the time, the exits.</summary>
internal static class Summary
{
    public static void Print(string headline, TimeSpan elapsed, IReadOnlyDictionary<VcpuEvent, long> exits, string? remark = null,
        IReadOnlyList<KeyValuePair<string, long>>? emulated = null)
    {
        string counts = string.Join(' ', exits.Select(e => $"{e.Key} {e.Value}"));
        Console.Error.WriteLine($"vmm: {headline} after {elapsed.TotalMilliseconds:0.0} ms{(remark is null ? "" : $" ({remark})")}\nvmm: exits: {counts}");
        if (emulated is { Count: > 0 })
        {
            // The instructions KVM's emulator gave up on and the emulation fallback finished, per mnemonic.
            Console.Error.WriteLine($"vmm: emulated: {string.Join(' ', emulated.Select(e => $"{e.Key} {e.Value}"))}");
        }
    }
}
