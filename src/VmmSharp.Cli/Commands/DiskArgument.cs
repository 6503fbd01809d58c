using VmmSharp.Machine;

namespace VmmSharp.Cli.Commands;

/// <summary>Parses <c>--disk PATH[,ro][,serial=ID]</c>.</summary>
internal static class DiskArgument
{
    public static bool TryParse(string text, out DiskOptions? disk, out string? error)
    {
        disk = null;
        string[] parts = text.Split(',');
        if (parts[0].Length == 0)
        {
            error = $"--disk '{text}': the image path is missing (PATH[,ro][,serial=ID])";
            return false;
        }
        var result = new DiskOptions(parts[0]);
        foreach (string part in parts.Skip(1))
        {
            if (part == "ro")
            {
                result = result with { ReadOnly = true };
            }
            else if (part.StartsWith("serial=", StringComparison.Ordinal))
            {
                result = result with { Serial = part["serial=".Length..] };
            }
            else
            {
                error = $"--disk '{text}': unknown option '{part}' (PATH[,ro][,serial=ID])";
                return false;
            }
        }
        disk = result;
        error = null;
        return true;
    }
}
