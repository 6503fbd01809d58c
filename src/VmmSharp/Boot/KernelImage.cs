using System.Buffers.Binary;
using System.Globalization;

namespace VmmSharp.Boot;

/// <summary>Recognises what kind of kernel an image is, by the markers each boot protocol defines.</summary>
public static class KernelImage
{
    /// <summary>"HdrS" at <see cref="SetupHeaderMagicOffset"/> marks a Linux boot-protocol image.</summary>
    public const uint SetupHeaderMagic = 0x53726448;

    /// <summary>Where a bzImage carries "HdrS".</summary>
    public const int SetupHeaderMagicOffset = 0x202;

    /// <summary>
    /// The image's boot protocol: a Multiboot header (valid checksum, 4-byte aligned, in the first 8 KiB) wins, then
    /// a Linux setup header, then an ELF with a PVH entry note.
    /// </summary>
    /// <exception cref="InvalidKernelImageException">The image is empty, unrecognised, a malformed ELF, or an ELF without a PVH note.</exception>
    public static KernelFormat Detect(ReadOnlySpan<byte> image)
    {
        if (image.IsEmpty)
        {
            throw new InvalidKernelImageException("kernel image is empty (0 bytes)");
        }
        if (MultibootHeader.Find(image, out _, out _) >= 0)
        {
            return KernelFormat.Multiboot;
        }
        if (image.Length >= SetupHeaderMagicOffset + 4 && BinaryPrimitives.ReadUInt32LittleEndian(image[SetupHeaderMagicOffset..]) == SetupHeaderMagic)
        {
            return KernelFormat.BzImage;
        }
        if (ElfImage.HasElfMagic(image))
        {
            ElfImage elf = ElfImage.Parse(image);
            if (elf.FindPvhEntry(image) is not null)
            {
                return KernelFormat.Pvh;
            }
            throw new InvalidKernelImageException(
                $"ELF{(elf.Is64Bit ? 64 : 32)} kernel image has no PVH entry note (Xen note type {ElfImage.XenElfNotePhys32Entry}, XEN_ELFNOTE_PHYS32_ENTRY) and no Multiboot header, so there is no known way to enter it");
        }
        MultibootHeader.Find(image, out int badMagicAt, out uint badSum);
        string hint = badMagicAt >= 0 ? $"; a Multiboot magic at 0x{badMagicAt:x} has a bad checksum (sum 0x{badSum:x}, must be 0)" : "";
        return image.Length < 4
            ? throw new InvalidKernelImageException($"kernel image truncated: {image.Length} bytes is too short for any kernel format (first bytes: {Hex(image)})")
            : throw new InvalidKernelImageException($"not a recognised kernel image (first bytes: {Hex(image)}){hint}");
    }

    /// <summary>Up to the first 16 bytes as hex, for error messages.</summary>
    internal static string Hex(ReadOnlySpan<byte> image) =>
        image.IsEmpty ? "none" : string.Join(' ', image[..Math.Min(image.Length, 16)].ToArray().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
}
