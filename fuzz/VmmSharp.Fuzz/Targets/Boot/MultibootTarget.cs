using System.Buffers.Binary;
using VmmSharp.Boot;
using VmmSharp.Fuzz.Support;

namespace VmmSharp.Fuzz.Targets.Boot;

/// <summary>
/// The Multiboot header and loader (address fields or ELF32, the MBI, the initrd as a module), on a machine chosen by the
/// <see cref="BootInput"/> prefix. The harness repairs the checksum of the first header magic, so that mutated flags
/// and address fields reach the loader instead of failing the checksum (kernel-detect covers bad checksums).
/// </summary>
internal sealed class MultibootTarget : IFuzzTarget
{
    private const uint Magic = 0x1BADB002;

    public string Name => "multiboot";

    public void Run(ReadOnlySpan<byte> input)
    {
        BootInput boot = BootInput.Parse(input);
        RepairChecksum(boot.Kernel);
        boot.LoadAndCheck(MultibootLoader.Load);
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        yield return ("kludge.bin", BootInput.Encode(SeedImages.MultibootKludge()));
        yield return ("kludge-initrd.bin", BootInput.Encode(SeedImages.MultibootKludge(), initrdLength: 0x2000));
        yield return ("elf32.bin", BootInput.Encode(SeedImages.MultibootElf(), memoryStep: 0, initrdLength: 0x100));
    }

    private static void RepairChecksum(Span<byte> image)
    {
        for (int at = 0; at + 12 <= Math.Min(image.Length, 8192); at += 4)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(image[at..]) == Magic)
            {
                uint flags = BinaryPrimitives.ReadUInt32LittleEndian(image[(at + 4)..]);
                BinaryPrimitives.WriteUInt32LittleEndian(image[(at + 8)..], unchecked(0u - Magic - flags));
                return;
            }
        }
    }
}
