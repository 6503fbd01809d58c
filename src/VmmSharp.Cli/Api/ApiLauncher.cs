using System.Runtime.CompilerServices;

namespace VmmSharp.Cli.Api;

/// <summary>
/// The one door to <see cref="ApiServer"/>: its signature names no ASP.NET Core type, so compiling a caller does not
/// load Kestrel; only calling it does.
/// </summary>
internal static class ApiLauncher
{
    /// <summary>Starts the API on <paramref name="socketPath"/>; disposing the result stops it and removes the socket.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static IAsyncDisposable Start(string socketPath, MicroVm vm) => ApiServer.StartAsync(socketPath, vm).GetAwaiter().GetResult();
}
