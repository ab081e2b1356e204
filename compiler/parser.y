/* parser.y — the .lmod grammar: tokens from lexer.l in, a Module (ast.h) out.
 *
 * A pure, reentrant LALR parser with locations. Each action is one ast_*
 * call (helpers in ast.c). Lists are left-recursive so the parser stack stays
 * bounded however long a file is. Error productions at statement ends (NL,
 * `;`) and at `}` let one run report several syntax errors. The grammar is
 * documented for users in specs/LANGUAGE.md; keep the two in step.
 */
%define api.pure full
%define api.prefix {lmod_}
%define api.location.type {Loc}
%define parse.error detailed
%define parse.lac full
%locations
%expect 0

%param {void *scanner}
%parse-param {LexState *lx} {Module *mod}

%code requires {
#include "ast.h"
#include "lex.h"
#include "parse_util.h"
}

%code provides {
int lmod_lex(LMOD_STYPE *lval, Loc *lloc, void *scanner);
}

%code {
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                    \
    do {                                                               \
        if (N) {                                                       \
            (Cur).file = YYRHSLOC(Rhs, 1).file;                        \
            (Cur).begin = YYRHSLOC(Rhs, 1).begin;                      \
            (Cur).end = YYRHSLOC(Rhs, N).end;                          \
        } else {                                                       \
            (Cur).file = YYRHSLOC(Rhs, 0).file;                        \
            (Cur).begin = (Cur).end = YYRHSLOC(Rhs, 0).end;            \
        }                                                              \
    } while (0)

static void lmod_error(Loc *loc, void *scanner, LexState *lx, Module *mod, const char *msg) {
    (void)scanner;
    (void)mod;
    parse_report(lx, *loc, msg);
}
#define C (lx->ctx)
}

%union {
    int64_t ival;
    double fval;
    const char *str;
    Expr *expr;
    Stmt *stmt;
    Arg *arg;
    PtrVec vec;
    TensorType *ttype;
    BlockParam *bparam;
    Hparam *hparam;
    Dataset *dataset;
    Network *network;
    SchedPhase *phase;
    OptGroup *group;
    RangeSpec range;
    TypeSpec type;
}

%token <ival> INT "integer" KW_TRUE "true" KW_FALSE "false"
%token <fval> FLOAT "number"
%token <str> IDENT "identifier" STRING "string"
%token NL "end of line"
%token KW_MODEL "model" KW_IMPORT "import" KW_HPARAMS "hparams" KW_DATASET "dataset"
%token KW_DATA "data" KW_NETWORK "network" KW_BLOCK "block" KW_STEP "step"
%token KW_OPTIMIZER "optimizer" KW_SCHEDULER "scheduler" KW_TRAINER "trainer"
%token KW_GROUP "group" KW_THEN "then" KW_RETURN "return" KW_LOG "log" KW_FOR "for"
%token KW_IN "in" KW_IF "if" KW_ELSE "else" KW_MIRROR "mirror" KW_FILE "file"
%token KW_ARCHIVE "archive" KW_FORMAT "format" KW_SPLIT "split"
%token PIPE "|>" ARROW "->" DOTDOT ".." EQ "==" NE "!=" LE "<=" GE ">=" AND "&&" OR "||" IDIV "//"

%type <expr> expr primary stage call
%type <vec> args arg_list exprs names stmts stmt_list params param_list outs out_list
%type <vec> idents hparam_list ds_items groups group_list phases
%type <arg> arg
%type <stmt> stmt else_opt
%type <ttype> ttype
%type <bparam> param
%type <hparam> hparam
%type <str> doc_opt sha_opt key
%type <range> range_opt
%type <type> stype
%type <phase> phase
%type <group> group

%right '?' ':'
%precedence PIPE
%left OR
%left AND
%left EQ NE
%left '<' '>' LE GE
%nonassoc DOTDOT
%left '+' '-'
%left '*' '/' IDIV '%'
%precedence UNARY

%%

module
    : items
    ;

items
    : %empty
    | items sep
    | items item sep
    | items error sep                      { yyerrok; }
    ;

sep : NL | ';' ;

seps
    : %empty
    | seps sep
    ;

item
    : KW_MODEL IDENT doc_opt               { parse_model(lx, mod, $2, @2, $3); }
    | KW_IMPORT STRING                     { parse_import_item(lx, mod, $2, @2); }
    | KW_HPARAMS '{' hparam_list '}'       { parse_hparams(lx, mod, &$3, @1); }
    | KW_DATASET IDENT doc_opt '{' ds_items '}'
                                           { parse_dataset(lx, mod, $2, @2, $3, &$5); }
    | KW_DATA '{' stmts '}'                { parse_data(lx, mod, &$3, @1); }
    | KW_NETWORK IDENT '(' params ')' outs '{' stmts '}'
                                           { parse_network(lx, mod, false, $2, @2, &$4, &$6, &$8); }
    | KW_BLOCK IDENT '(' params ')' outs '{' stmts '}'
                                           { parse_network(lx, mod, true, $2, @2, &$4, &$6, &$8); }
    | KW_STEP IDENT '(' IDENT ')' '{' stmts '}'
                                           { parse_step(lx, mod, $2, @2, $4, @4, &$7); }
    | KW_OPTIMIZER IDENT '(' args ')' groups
                                           { parse_optimizer(lx, mod, $2, @2, &$4, &$6); }
    | KW_SCHEDULER phases                  { parse_scheduler(lx, mod, @1, &$2); }
    | KW_TRAINER '{' stmts '}'             { parse_trainer(lx, mod, @1, &$3); }
    ;

doc_opt
    : %empty                               { $$ = NULL; }
    | STRING                               { $$ = $1; }
    ;

/* ---- hparams ------------------------------------------------------------ */

hparam_list
    : seps                                 { $$ = (PtrVec){0}; }
    | hparam_list hparam seps              { $$ = $1; parse_push(lx, &$$, $2); }
    | hparam_list error NL seps            { $$ = $1; yyerrok; }
    ;

hparam
    : IDENT ':' stype '=' expr range_opt doc_opt
                                           { $$ = parse_hparam(lx, $1, @1, &$3, $5, &$6, $7); }
    ;

stype
    : IDENT                                { $$ = parse_type_name(lx, $1, @1, NULL); }
    | IDENT '(' idents ')'                 { $$ = parse_type_name(lx, $1, @1, &$3); }
    ;

idents
    : IDENT                                { $$ = (PtrVec){0}; parse_push(lx, &$$, parse_name(lx, $1, @1)); }
    | idents ',' IDENT                     { $$ = $1; parse_push(lx, &$$, parse_name(lx, $3, @3)); }
    ;

range_opt
    : %empty                               { $$ = (RangeSpec){0}; }
    | KW_IN '(' expr ',' expr ')'          { $$ = (RangeSpec){$3, $5, true, true, @2}; }
    | KW_IN '(' expr ',' expr ']'          { $$ = (RangeSpec){$3, $5, true, false, @2}; }
    | KW_IN '[' expr ',' expr ')'          { $$ = (RangeSpec){$3, $5, false, true, @2}; }
    | KW_IN '[' expr ',' expr ']'          { $$ = (RangeSpec){$3, $5, false, false, @2}; }
    ;

/* ---- datasets ------------------------------------------------------------ */

ds_items
    : seps                                 { $$ = (PtrVec){0}; }
    | ds_items KW_MIRROR STRING seps       { $$ = $1; parse_push(lx, &$$, parse_ds_item(lx, DSI_MIRROR, @2, $3, @3, NULL, NULL, NULL)); }
    | ds_items KW_FILE STRING sha_opt seps { $$ = $1; parse_push(lx, &$$, parse_ds_item(lx, DSI_FILE, @2, $3, @3, $4, NULL, NULL)); }
    | ds_items KW_ARCHIVE STRING sha_opt seps
                                           { $$ = $1; parse_push(lx, &$$, parse_ds_item(lx, DSI_ARCHIVE, @2, $3, @3, $4, NULL, NULL)); }
    | ds_items KW_FORMAT primary seps      { $$ = $1; parse_push(lx, &$$, parse_ds_item(lx, DSI_FORMAT, @2, NULL, @3, NULL, $3, NULL)); }
    | ds_items KW_SPLIT IDENT '(' args ')' seps
                                           { $$ = $1; parse_push(lx, &$$, parse_ds_item(lx, DSI_SPLIT, @3, $3, @3, NULL, NULL, &$5)); }
    | ds_items STRING seps                 { $$ = $1; parse_push(lx, &$$, parse_ds_item(lx, DSI_DOC, @2, $2, @2, NULL, NULL, NULL)); }
    | ds_items error NL seps               { $$ = $1; yyerrok; }
    ;

sha_opt
    : %empty                               { $$ = NULL; }
    | IDENT STRING                         { $$ = parse_sha_key(lx, $1, @1, $2); }
    ;

/* ---- networks and blocks ------------------------------------------------------ */

params
    : %empty                               { $$ = (PtrVec){0}; }
    | param_list                           { $$ = $1; }
    | param_list ','                       { $$ = $1; }
    ;

param_list
    : param                                { $$ = (PtrVec){0}; parse_push(lx, &$$, $1); }
    | param_list ',' param                 { $$ = $1; parse_push(lx, &$$, $3); }
    ;

param
    : IDENT                                { $$ = parse_param(lx, $1, @1, NULL, NULL, NULL); }
    | IDENT ':' ttype                      { $$ = parse_param(lx, $1, @1, $3, NULL, NULL); }
    | IDENT ':' stype                      { $$ = parse_param(lx, $1, @1, NULL, &$3, NULL); }
    | IDENT ':' stype '=' expr             { $$ = parse_param(lx, $1, @1, NULL, &$3, $5); }
    ;

ttype
    : IDENT '[' exprs ']'                  { $$ = parse_ttype(lx, $1, @1, &$3, @$); }
    | IDENT '[' ']'                        { $$ = parse_ttype(lx, $1, @1, NULL, @$); }
    ;

outs
    : %empty                               { $$ = (PtrVec){0}; }
    | ARROW ttype                          { $$ = (PtrVec){0}; parse_push(lx, &$$, parse_output(lx, NULL, @2, $2)); }
    | ARROW '(' out_list ')'               { $$ = $3; }
    ;

out_list
    : IDENT ':' ttype                      { $$ = (PtrVec){0}; parse_push(lx, &$$, parse_output(lx, $1, @1, $3)); }
    | ttype                                { $$ = (PtrVec){0}; parse_push(lx, &$$, parse_output(lx, NULL, @1, $1)); }
    | out_list ',' IDENT ':' ttype         { $$ = $1; parse_push(lx, &$$, parse_output(lx, $3, @3, $5)); }
    | out_list ',' ttype                   { $$ = $1; parse_push(lx, &$$, parse_output(lx, NULL, @3, $3)); }
    ;

/* ---- statements ------------------------------------------------------------------ */

stmts
    : stmt_list                            { $$ = $1; }
    | stmt_list stmt                       { $$ = $1; parse_push(lx, &$$, $2); }
    ;

stmt_list
    : %empty                               { $$ = (PtrVec){0}; }
    | stmt_list sep                        { $$ = $1; }
    | stmt_list stmt sep                   { $$ = $1; parse_push(lx, &$$, $2); }
    | stmt_list error sep                  { $$ = $1; yyerrok; }
    ;

stmt
    : names '=' expr                       { $$ = parse_assign(lx, &$1, $3, @$); }
    | KW_LOG IDENT '=' expr                { $$ = parse_log(lx, $2, @2, $4, NULL, @$); }
    | KW_LOG IDENT '=' expr ',' arg_list   { $$ = parse_log(lx, $2, @2, $4, &$6, @$); }
    | KW_RETURN exprs                      { $$ = parse_return(lx, &$2, @$); }
    | KW_FOR IDENT KW_IN expr '{' stmts '}'
                                           { $$ = parse_for(lx, $2, @2, $4, &$6, @$); }
    | KW_IF expr '{' stmts '}' else_opt    { $$ = parse_if(lx, $2, &$4, $6, @$); }
    | expr                                 { $$ = parse_expr_stmt(lx, $1); }
    ;

else_opt
    : %empty                               { $$ = NULL; }
    | KW_ELSE '{' stmts '}'                { $$ = parse_else(lx, &$3, @$); }
    | KW_ELSE KW_IF expr '{' stmts '}' else_opt
                                           { $$ = parse_if(lx, $3, &$5, $7, diag_span(@2, @$)); }
    ;

names
    : IDENT                                { $$ = (PtrVec){0}; parse_push(lx, &$$, parse_name(lx, $1, @1)); }
    | names ',' IDENT                      { $$ = $1; parse_push(lx, &$$, parse_name(lx, $3, @3)); }
    ;

/* ---- optimizer and scheduler ------------------------------------------------------- */

groups
    : %empty                               { $$ = (PtrVec){0}; }
    | '{' group_list '}'                   { $$ = $2; }
    ;

group_list
    : seps                                 { $$ = (PtrVec){0}; }
    | group_list group seps                { $$ = $1; parse_push(lx, &$$, $2); }
    | group_list error NL seps             { $$ = $1; yyerrok; }
    ;

group
    : KW_GROUP IDENT '(' args ')'          { $$ = parse_group(lx, $2, @2, &$4); }
    ;

phases
    : phase                                { $$ = (PtrVec){0}; parse_push(lx, &$$, $1); }
    | phases KW_THEN phase                 { $$ = $1; parse_push(lx, &$$, $3); }
    ;

phase
    : IDENT '(' args ')'                   { $$ = parse_phase(lx, $1, @1, &$3); }
    | IDENT                                { $$ = parse_phase(lx, $1, @1, NULL); }
    ;

/* ---- expressions -------------------------------------------------------------------- */

exprs
    : expr                                 { $$ = (PtrVec){0}; parse_push(lx, &$$, $1); }
    | exprs ',' expr                       { $$ = $1; parse_push(lx, &$$, $3); }
    ;

expr
    : primary                              { $$ = $1; }
    | expr PIPE stage                      { $$ = parse_binary(lx, EX_PIPE, 0, $1, $3, @$); }
    | expr '?' expr ':' expr               { $$ = parse_cond(lx, $1, $3, $5, @$); }
    | expr OR expr                         { $$ = parse_binary(lx, EX_BINARY, OPR_OR, $1, $3, @2); }
    | expr AND expr                        { $$ = parse_binary(lx, EX_BINARY, OPR_AND, $1, $3, @2); }
    | expr EQ expr                         { $$ = parse_binary(lx, EX_BINARY, OPR_EQ, $1, $3, @2); }
    | expr NE expr                         { $$ = parse_binary(lx, EX_BINARY, OPR_NE, $1, $3, @2); }
    | expr '<' expr                        { $$ = parse_binary(lx, EX_BINARY, OPR_LT, $1, $3, @2); }
    | expr LE expr                         { $$ = parse_binary(lx, EX_BINARY, OPR_LE, $1, $3, @2); }
    | expr '>' expr                        { $$ = parse_binary(lx, EX_BINARY, OPR_GT, $1, $3, @2); }
    | expr GE expr                         { $$ = parse_binary(lx, EX_BINARY, OPR_GE, $1, $3, @2); }
    | expr DOTDOT expr                     { $$ = parse_binary(lx, EX_RANGE, 0, $1, $3, @$); }
    | expr '+' expr                        { $$ = parse_binary(lx, EX_BINARY, OPR_ADD, $1, $3, @2); }
    | expr '-' expr                        { $$ = parse_binary(lx, EX_BINARY, OPR_SUB, $1, $3, @2); }
    | expr '*' expr                        { $$ = parse_binary(lx, EX_BINARY, OPR_MUL, $1, $3, @2); }
    | expr '/' expr                        { $$ = parse_binary(lx, EX_BINARY, OPR_DIV, $1, $3, @2); }
    | expr IDIV expr                       { $$ = parse_binary(lx, EX_BINARY, OPR_IDIV, $1, $3, @2); }
    | expr '%' expr                        { $$ = parse_binary(lx, EX_BINARY, OPR_MOD, $1, $3, @2); }
    | '-' expr %prec UNARY                 { $$ = parse_unary(lx, OPR_NEG, $2, @$); }
    | '!' expr %prec UNARY                 { $$ = parse_unary(lx, OPR_NOT, $2, @$); }
    ;

stage
    : IDENT                                { $$ = parse_name_expr(lx, $1, @1); }
    | call                                 { $$ = $1; }
    ;

call
    : IDENT '(' args ')'                   { $$ = parse_call(lx, $1, @1, &$3, @$); }
    | KW_SPLIT '(' args ')'                { $$ = parse_call(lx, "split", @1, &$3, @$); }
    ;

primary
    : INT                                  { $$ = parse_int(lx, $1, @1); }
    | FLOAT                                { $$ = parse_float(lx, $1, @1); }
    | STRING                               { $$ = parse_string(lx, $1, @1); }
    | KW_TRUE                              { $$ = parse_bool(lx, 1, @1); }
    | KW_FALSE                             { $$ = parse_bool(lx, 0, @1); }
    | IDENT                                { $$ = parse_name_expr(lx, $1, @1); }
    | call                                 { $$ = $1; }
    | primary '.' IDENT                    { $$ = parse_field(lx, $1, $3, @3, @$); }
    | primary '[' expr ']'                 { $$ = parse_binary(lx, EX_INDEX, 0, $1, $3, @$); }
    | '(' expr ')'                         { $$ = parse_parens(lx, $2, @$); }
    | '(' expr ',' ')'                     { $$ = parse_tuple1(lx, $2, @$); }
    | '(' expr ',' exprs ')'               { $$ = parse_tuple(lx, $2, &$4, @$); }
    | '(' ')'                              { $$ = parse_tuple(lx, NULL, NULL, @$); }
    ;

args
    : %empty                               { $$ = (PtrVec){0}; }
    | arg_list                             { $$ = $1; }
    | arg_list ','                         { $$ = $1; }
    ;

arg_list
    : arg                                  { $$ = (PtrVec){0}; parse_push(lx, &$$, $1); }
    | arg_list ',' arg                     { $$ = $1; parse_push(lx, &$$, $3); }
    ;

arg
    : expr                                 { $$ = parse_arg(lx, NULL, @1, $1); }
    | key ':' expr                         { $$ = parse_arg(lx, $1, @1, $3); }
    ;

key
    : IDENT                                { $$ = $1; }
    | KW_IN                                { $$ = "in"; }
    | KW_FILE                              { $$ = "file"; }
    | KW_FORMAT                            { $$ = "format"; }
    | KW_SPLIT                             { $$ = "split"; }
    | KW_STEP                              { $$ = "step"; }
    | KW_DATA                              { $$ = "data"; }
    | KW_LOG                               { $$ = "log"; }
    ;

%%
