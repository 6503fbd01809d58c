using VmmSharp.Boot;
using VmmSharp.Fuzz.Support;

namespace VmmSharp.Fuzz.Targets.Boot;

/// <summary>KernelImage's format detection: Multiboot header search and checksum, the "HdrS" marker, ELF with a PVH note.</summary>
internal sealed class KernelDetectTarget : IFuzzTarget
{
    public string Name => "kernel-detect";

    public void Run(ReadOnlySpan<byte> input)
    {
        try
        {
            KernelImage.Detect(input);
        }
        catch (InvalidKernelImageException e)
        {
            Rejection.Note(e);
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        yield return ("pvh.elf", SeedImages.PvhElf());
        yield return ("multiboot.elf", SeedImages.MultibootElf());
        yield return ("kludge.bin", SeedImages.MultibootKludge());
        yield return ("bzimage.bin", SeedImages.BzImage());
    }
}
