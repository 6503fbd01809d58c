using System.Globalization;
using VmmSharp.Machine;

namespace VmmSharp.Cli.Commands;

/// <summary>Parses <c>--vsock cid=N,uds=PATH</c>.</summary>
internal static class VsockArgument
{
    public static bool TryParse(string text, out VsockOptions? vsock, out string? error)
    {
        vsock = null;
        ulong? cid = null;
        string? uds = null;
        foreach (string part in text.Split(','))
        {
            if (part.StartsWith("cid=", StringComparison.Ordinal)
                && ulong.TryParse(part.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out ulong n))
            {
                if (n is < 3 or > 0xFFFF_FFFE)
                {
                    error = $"--vsock '{text}': cid {n} is reserved or too large (a guest's cid is 3 to 4294967294)";
                    return false;
                }
                cid = n;
            }
            else if (part.StartsWith("uds=", StringComparison.Ordinal) && part.Length > 4)
            {
                uds = part[4..];
            }
            else
            {
                error = $"--vsock '{text}': cannot use '{part}' (cid=N,uds=PATH, e.g. cid=3,uds=/tmp/vm.vsock)";
                return false;
            }
        }
        if (cid is null || uds is null)
        {
            error = $"--vsock '{text}': {(cid is null ? "the cid" : "the socket path")} is missing (cid=N,uds=PATH)";
            return false;
        }
        vsock = new VsockOptions(cid.Value, uds);
        error = null;
        return true;
    }
}
