using System.Globalization;

namespace VmmSharp.Cli.Commands;

/// <summary>Memory sizes as users write them: <c>128M</c>, <c>1G</c>, <c>512K</c>, or plain bytes.</summary>
internal static class SizeArgument
{
    public static bool TryParse(string text, out ulong bytes, out string? error)
    {
        bytes = 0;
        error = null;
        string t = text.Trim();
        ulong unit = 1;
        if (t.Length > 0 && char.IsLetter(t[^1]))
        {
            unit = char.ToUpperInvariant(t[^1]) switch
            {
                'K' => 1UL << 10,
                'M' => 1UL << 20,
                'G' => 1UL << 30,
                'T' => 1UL << 40,
                _ => 0,
            };
            t = t[..^1];
        }
        if (unit == 0 || !ulong.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) || n == 0)
        {
            error = $"memory size '{text}' is not a positive number with an optional K, M, G or T suffix (e.g. 512M)";
            return false;
        }
        if (n > ulong.MaxValue / unit)
        {
            error = $"memory size '{text}' is too large";
            return false;
        }
        bytes = n * unit;
        return true;
    }
}
