using VmmSharp.Boot;
using VmmSharp.Fuzz.Support;

namespace VmmSharp.Fuzz.Targets.Boot;

/// <summary>The Linux setup header and bzImage loader (placement, init_size, cmdline_size, the initrd, the zero page).</summary>
internal sealed class BzImageTarget : IFuzzTarget
{
    public string Name => "bzimage";

    public void Run(ReadOnlySpan<byte> input) => BootInput.Parse(input).LoadAndCheck(LinuxLoader.Load);

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        // Linux's own pref_address is 16 MiB, where a relocatable kernel decompresses (boot.rst), so RAM must reach past it.
        yield return ("relocatable.bin", BootInput.Encode(SeedImages.BzImage(), memoryStep: 250, initrdLength: 0x1000));
        yield return ("fixed.bin", BootInput.Encode(SeedImages.BzImage(relocatable: false, prefAddress: 0x20_0000)));
        yield return ("big-init-size.bin", BootInput.Encode(SeedImages.BzImage(prefAddress: 0x20_0000, initSize: 0x80_0000), memoryStep: 200, initrdLength: 0x4000));
    }
}
