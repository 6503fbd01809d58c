using VmmSharp.Boot;
using VmmSharp.Fuzz.Support;

namespace VmmSharp.Fuzz.Targets.Boot;

/// <summary>
/// The PVH note parser alone: the input is the contents of a PT_NOTE segment, which the harness wraps in a valid ELF64,
/// so that every mutation lands in the notes rather than in headers the ELF parser would refuse first.
/// </summary>
internal sealed class PvhNoteTarget : IFuzzTarget
{
    public string Name => "pvh-note";

    public void Run(ReadOnlySpan<byte> input)
    {
        byte[] image = SeedImages.Elf(true, SeedImages.MachineX8664, SeedImages.LoadAddress,
            SeedImages.Load(SeedImages.Code, 0x1000), SeedImages.Note(input.ToArray()));
        try
        {
            ElfImage.Parse(image).FindPvhEntry(image);
        }
        catch (InvalidKernelImageException e)
        {
            Rejection.Note(e);
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        yield return ("entry64.note", SeedImages.PvhNote());
        yield return ("entry32.note", SeedImages.PvhNote(width: 4));
        yield return ("after-other.note", [.. SeedImages.OtherNote(), .. SeedImages.PvhNote()]);
        yield return ("other-only.note", SeedImages.OtherNote());
    }
}
