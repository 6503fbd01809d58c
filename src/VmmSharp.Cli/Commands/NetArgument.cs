using System.Globalization;
using VmmSharp.Machine;

namespace VmmSharp.Cli.Commands;

/// <summary>Parses <c>--net tap=NAME[,mac=MAC]</c>.</summary>
internal static class NetArgument
{
    public static bool TryParse(string text, out NetOptions? net, out string? error)
    {
        net = null;
        string? tap = null;
        byte[]? mac = null;
        foreach (string part in text.Split(','))
        {
            if (part.StartsWith("tap=", StringComparison.Ordinal) && part.Length > 4)
            {
                tap = part[4..];
            }
            else if (part.StartsWith("mac=", StringComparison.Ordinal) && ParseMac(part[4..]) is { } m)
            {
                mac = m;
            }
            else
            {
                error = $"--net '{text}': cannot use '{part}' (tap=NAME[,mac=52:54:00:12:34:56])";
                return false;
            }
        }
        if (tap is null)
        {
            error = $"--net '{text}': the TAP name is missing (tap=NAME[,mac=MAC])";
            return false;
        }
        net = new NetOptions(tap) { Mac = mac };
        error = null;
        return true;
    }

    public static byte[]? ParseMac(string text)
    {
        string[] bytes = text.Split(':');
        if (bytes.Length != 6)
        {
            return null;
        }
        byte[] mac = new byte[6];
        for (int i = 0; i < 6; i++)
        {
            if (bytes[i].Length != 2 || !byte.TryParse(bytes[i], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out mac[i]))
            {
                return null;
            }
        }
        return mac;
    }
}
