using System.Globalization;

namespace VmmSharp.Profiling;

/// <summary>One line of a profile: a function (or an address without a symbol) and the samples that fell into it.</summary>
/// <param name="Name">The function's name, or <c>[user]</c>/<c>[unknown]</c> with the address range.</param>
/// <param name="Address">The function's start (for an address without a symbol, the address itself).</param>
/// <param name="Samples">How many samples fell into it.</param>
public readonly record struct ProfileEntry(string Name, ulong Address, long Samples);

/// <summary>What a <see cref="RipSampler"/> saw: samples per guest RIP, and what they make per function.</summary>
/// <param name="Counts">Samples per RIP.</param>
/// <param name="Total">Samples kept.</param>
/// <param name="Dropped">Samples taken after a vCPU's buffer was full (not in <paramref name="Counts"/>).</param>
/// <param name="Interval">The time between samples.</param>
public sealed record GuestProfile(IReadOnlyDictionary<ulong, long> Counts, long Total, long Dropped, TimeSpan Interval)
{
    // Below this a RIP is not kernel text of a 64-bit higher-half kernel; such samples are grouped as user code.
    private const ulong KernelHalf = 0xffff_8000_0000_0000;

    /// <summary>The samples summed per function of <paramref name="symbols"/>, most first.</summary>
    public IReadOnlyList<ProfileEntry> ByFunction(SymbolTable symbols)
    {
        ArgumentNullException.ThrowIfNull(symbols);
        var byName = new Dictionary<string, (ulong Address, long Samples)>();
        foreach ((ulong rip, long n) in Counts)
        {
            (string name, ulong address) = symbols.Find(rip) is { } s ? (s.Name, s.Address)
                : rip < KernelHalf ? ("[user or low memory]", 0UL) : ("[unknown]", 0UL);
            byName[name] = (address, byName.GetValueOrDefault(name).Samples + n);
        }
        return [.. byName.Select(e => new ProfileEntry(e.Key, e.Value.Address, e.Value.Samples)).OrderByDescending(e => e.Samples).ThenBy(e => e.Name, StringComparer.Ordinal)];
    }

    /// <summary>The samples per RIP, most first.</summary>
    public IReadOnlyList<ProfileEntry> ByAddress(SymbolTable symbols)
    {
        ArgumentNullException.ThrowIfNull(symbols);
        return [.. Counts.OrderByDescending(e => e.Value).ThenBy(e => e.Key).Select(e => new ProfileEntry(
            symbols.Find(e.Key) is { } s ? $"{s.Name}+0x{e.Key - s.Address:x}" : "?", e.Key, e.Value))];
    }

    /// <summary>Writes the report: totals, the top <paramref name="top"/> functions and the top addresses.</summary>
    public void WriteReport(TextWriter writer, SymbolTable symbols, int top = 40)
    {
        ArgumentNullException.ThrowIfNull(writer);
        CultureInfo c = CultureInfo.InvariantCulture;
        writer.WriteLine(string.Create(c, $"# guest profile: {Total} samples every {Interval.TotalMilliseconds:0.###} ms ({Total * Interval.TotalSeconds:0.0} s sampled), {Dropped} dropped, {symbols.Count} symbols"));
        writer.WriteLine("# samples  percent  function");
        foreach (ProfileEntry e in ByFunction(symbols).Take(top))
        {
            writer.WriteLine(string.Create(c, $"{e.Samples,9} {Percent(e.Samples),7:0.00}%  {e.Name}"));
        }
        writer.WriteLine("# samples  percent  address             where");
        foreach (ProfileEntry e in ByAddress(symbols).Take(top))
        {
            writer.WriteLine(string.Create(c, $"{e.Samples,9} {Percent(e.Samples),7:0.00}%  0x{e.Address:x16}  {e.Name}"));
        }
    }

    private double Percent(long n) => Total == 0 ? 0 : 100.0 * n / Total;
}
