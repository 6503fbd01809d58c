namespace VmmSharp.Cli.Api;

/// <summary>
/// <c>vmm run --config-file FILE</c>: Firecracker's JSON configuration (the bodies of its pre-boot requests under the
/// names of their endpoints: <c>boot-source</c>, <c>machine-config</c>, <c>drives</c>, <c>network-interfaces</c>,
/// <c>vsock</c>, <c>entropy</c>, <c>logger</c>, <c>metrics</c>), applied as those requests would be.
/// </summary>
internal static class ConfigFile
{
    /// <summary>The largest file read (a configuration is a few hundred bytes).</summary>
    public const int MaxFileSize = 1 << 20;

    /// <summary>Reads <paramref name="path"/> and configures <paramref name="vm"/> from it.</summary>
    /// <exception cref="ApiFault">The file cannot be read, is not such a configuration, or names a value the API refuses; the message names the file and the value.</exception>
    public static void Apply(string path, MicroVm vm)
    {
        FullVmConfiguration config = Read(path);
        try
        {
            if (config.Logger is { } logger)
            {
                vm.SetLogger(logger);
            }
            if (config.Metrics is { } metrics)
            {
                vm.SetMetrics(metrics);
            }
            vm.Configure("boot-source", s =>
            {
                if (config.BootSource is { } boot)
                {
                    s.SetBootSource(boot);
                }
                if (config.MachineConfig is { } machine)
                {
                    s.SetMachine(machine);
                }
                foreach (Drive d in config.Drives ?? [])
                {
                    s.SetDrive(d.DriveId, d);
                }
                foreach (NetworkInterface n in config.NetworkInterfaces ?? [])
                {
                    s.SetNetworkInterface(n.IfaceId, n);
                }
                if (config.Vsock is { } vsock)
                {
                    s.SetVsock(vsock);
                }
                if (config.Entropy is { } entropy)
                {
                    s.SetEntropy(entropy);
                }
            });
        }
        catch (ApiFault f)
        {
            throw new ApiFault($"--config-file '{path}': {f.Message}");
        }
    }

    private static FullVmConfiguration Read(string path)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw new ApiFault($"--config-file '{path}': the file does not exist");
            }
            if (info.Length > MaxFileSize)
            {
                throw new ApiFault($"--config-file '{path}': {info.Length} bytes is over the limit of {MaxFileSize} bytes");
            }
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ApiFault($"--config-file '{path}': cannot read it: {e.Message}");
        }
        try
        {
            return ApiRequest.Parse(bytes, ApiJson.Api.FullVmConfiguration, MaxFileSize);
        }
        catch (ApiFault f)
        {
            throw new ApiFault($"--config-file '{path}': {f.Message}");
        }
    }
}
